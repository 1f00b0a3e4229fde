#!/usr/bin/env bash
# An emulated aarch64 Python with edgesleep's runtime, from Debian arm64 packages and aarch64
# wheels; no ARM machine, no binfmt_misc, no chroot needed (qemu-aarch64 -L ROOT).
#
#   sudo bash bench/arm/setup.sh [ROOT]        # default ROOT: runs/arm; ~2 min, ~400 MB
#
# Writes ROOT/qemu (qemu-user 10, static, from bookworm-backports: Debian's stock 7.2 crashes
# importing onnxruntime), ROOT/sysroot (python3.11 and its libraries for arm64, unpacked with
# dpkg -x), ROOT/site (numpy, scipy, onnxruntime, pyedflib, typer, rich, pytest and edgesleep
# for cp311 aarch64) and ROOT/python (the emulated interpreter). Needs root for apt (a
# backports source and the arm64 architecture are added to apt; nothing is installed on the
# host).
set -euo pipefail
ROOT=$(realpath -m "${1:-runs/arm}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
# The newest onnxruntime with cp311 aarch64 wheels that this project's wheel index carries;
# on a real Pi, pip installs the pinned version from PyPI.
ORT_VERSION=${ORT_VERSION:-1.28.0}
mkdir -p "$ROOT"/{debs,sysroot,qemu,wheels,site}

if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        > /etc/apt/sources.list.d/edgesleep-backports.list
fi
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -q

cd "$ROOT/debs"
apt-get download -q -t bookworm-backports qemu-user  # static binaries since qemu 9
dpkg -x qemu-user_*_amd64.deb "$ROOT/qemu"
# python3.11 for arm64 and every arm64 library it (and onnxruntime's libstdc++) needs
mapfile -t PKGS < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances python3.11:arm64 libstdc++6:arm64 \
    | grep -E '^[a-z0-9][^ ]*:arm64$' | grep -vE '^(dpkg|tar|install-info|perl.*):' | sort -u)
apt-get download -q "${PKGS[@]}"
for deb in *_arm64.deb; do dpkg -x "$deb" "$ROOT/sysroot"; done

cd "$REPO"
PLATFORMS=(--platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
           --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64)
pip download -q "${PLATFORMS[@]}" --python-version 311 --implementation cp \
    --only-binary=:all: --dest "$ROOT/wheels" \
    "onnxruntime==$ORT_VERSION" numpy scipy pyedflib "typer>=0.29" rich pytest
pip wheel -q --no-deps --wheel-dir "$ROOT/wheels" .
pip install -q --upgrade --no-index --find-links "$ROOT/wheels" "${PLATFORMS[@]}" \
    --python-version 311 --implementation cp --only-binary=:all: --target "$ROOT/site" \
    "onnxruntime==$ORT_VERSION" numpy scipy pyedflib "typer>=0.29" rich pytest
# edgesleep itself: pure Python; --no-deps because it pins the onnxruntime of the x86 CI
pip install -q --upgrade --no-deps --target "$ROOT/site" "$ROOT"/wheels/edgesleep-*.whl

cat > "$ROOT/python" <<PY
#!/bin/sh
# The emulated aarch64 Python (QEMU_CPU picks the core); the bench's fresh processes start
# through the same emulator (EDGESLEEP_BENCH_PREFIX).
export QEMU_LD_PREFIX="$ROOT/sysroot" PYTHONPATH="$ROOT/site" PYTHONNOUSERSITE=1
export EDGESLEEP_BENCH_PREFIX="$ROOT/qemu/usr/bin/qemu-aarch64"
exec "$ROOT/qemu/usr/bin/qemu-aarch64" "$ROOT/sysroot/usr/bin/python3.11" "\$@"
PY
chmod +x "$ROOT/python"
QEMU_CPU=cortex-a72 "$ROOT/python" -c \
    "import platform, numpy, onnxruntime; print(platform.machine(), 'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__)"
