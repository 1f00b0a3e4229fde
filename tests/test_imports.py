"""The device side never imports torch or onnx, and the runtime never imports scipy."""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # not a checkout, whose edgesleep/ would shadow the install
    ).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "code",
    [
        "import edgesleep",
        "import edgesleep.cli",
        "from typer.testing import CliRunner\nfrom edgesleep.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0",
    ],
)
def test_no_torch_no_onnx(code: str) -> None:
    mods = _modules_after(code)
    assert "torch" not in mods and "onnx" not in mods


def test_streaming_dsp_imports_no_scipy() -> None:
    mods = _modules_after(
        "import numpy as np\nfrom edgesleep.dsp import StreamingResampler, StreamingSTFT\n"
        "r = StreamingResampler(256); s = StreamingSTFT(); s.push(r.push(np.zeros(9000)))"
    )
    assert "scipy" not in mods


def test_scoring_a_256_hz_file_imports_no_scipy(tmp_path: Path) -> None:
    """The runtime install has no scipy: reading and resampling a 256-Hz EDF and the CLI's
    staging path do without it."""
    import pyedflib

    path = tmp_path / "night.edf"
    writer = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{"label": "EEG Fpz-Cz", "dimension": "uV", "sample_frequency": 256,
                              "physical_max": 500.0, "physical_min": -500.0,
                              "digital_max": 32767, "digital_min": -32768}])  # fmt: skip
    writer.writeSamples([np.zeros(256 * 90)])
    writer.close()
    mods = _modules_after(
        f"from edgesleep.io.edf import read_signal\nimport edgesleep.api, edgesleep.cli.stage\n"
        f"assert read_signal({str(path)!r}, 'Fpz-Cz').data.shape == (9000,)"
    )
    assert not {"scipy", "torch", "onnx"} & mods


def test_streaming_runtime_imports_no_scipy_torch_or_onnx() -> None:
    mods = _modules_after(
        "import edgesleep.stager, edgesleep.sources, edgesleep.protocol, edgesleep.stream\n"
        "import edgesleep.emulate, edgesleep.bench.process, edgesleep.bench.runtime"
    )
    assert not {"scipy", "torch", "onnx"} & mods


def test_the_top_level_exports_what_a_user_calls_lazily() -> None:
    import edgesleep

    assert set(edgesleep.__all__) - {"__version__"} == set(edgesleep._EXPORTS)
    for name in edgesleep.__all__:
        assert getattr(edgesleep, name) is not None
    assert "onnxruntime" not in _modules_after("import edgesleep")  # loads with a model
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgesleep.nope  # noqa: B018


# layer -> the packages it must never import (the layers import downward only: the runtime
# < train < export < workflows < the CLI; bench measures the runtime and training)
LAYERS = {
    "edgesleep": ("edgesleep.train", "edgesleep.export", "edgesleep.bench",
                  "edgesleep.workflows", "edgesleep.cli"),
    "train": ("edgesleep.export", "edgesleep.bench", "edgesleep.workflows", "edgesleep.cli"),
    "export": ("edgesleep.bench", "edgesleep.workflows", "edgesleep.cli"),
    "workflows": ("edgesleep.bench", "edgesleep.cli"),
    "bench": ("edgesleep.export", "edgesleep.workflows", "edgesleep.cli"),
}  # fmt: skip


def test_imports_go_downward_only() -> None:
    import ast

    root = Path(__file__).resolve().parent.parent
    wrong = []
    for folder, forbidden in LAYERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            if folder == "edgesleep" and "cli" in path.parts:
                continue  # the CLI is the top layer
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                wrong += [f"{path.relative_to(root)}: {n}" for n in names
                          if n.startswith(forbidden)]  # fmt: skip
    assert not wrong, wrong


def test_every_runtime_package_is_installed() -> None:
    """A package of the runtime left out of pyproject's list would be missing from a
    non-editable install (a Raspberry Pi's `pip install .`)."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("run from outside the checkout")
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])  # fmt: skip
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "edgesleep").rglob("__init__.py")}  # fmt: skip
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
