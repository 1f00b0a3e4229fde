"""Summary of an emulated-aarch64 run (``bench/arm/run.sh``): test counts, parity, versions.

``python -m edgesleep.bench.emulated RESULTS --qemu "qemu-aarch64 version ..." --out DIR``
reads ``RESULTS/CPU/{pytest.xml, parity.json, bench-quick.json, seconds}`` for each CPU,
writes ``DIR/arm_emulated.{json,md}``, prints the counts, and exits with status 1 when a
CPU's parity tests failed, errored, were skipped or did not finish.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgesleep.io.writers import markdown_table, write_report

EMULATED = (
    "EMULATED: qemu-user translates every aarch64 instruction on an x86 host, so the times, "
    "CPU-s/h, RSS and wake-ups below say nothing about ARM speed or memory (RSS includes "
    "qemu's translation cache). They show that the bench runs there; the parity columns are "
    "what this run checks."
)


def test_counts(xml_path: Path) -> dict[str, Any]:
    """Counts of a pytest JUnit XML file (all zero when it is missing: the run died)."""
    if not xml_path.is_file():
        return {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0, "time_s": 0.0}
    suite = ET.parse(xml_path).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "time_s": round(float(suite.get("time", 0.0)), 1)}


def summarize(results: Path, qemu: str) -> dict[str, Any]:
    cpus = {}
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        parity_path = folder / "parity.json"  # empty or missing when the run died before it
        text = parity_path.read_text() if parity_path.is_file() else ""
        parity = (
            json.loads(text)
            if text.strip()
            else {
                "parity": {},
                "cpu": {"machine": "-", "isa": [], "onnxruntime": "-"},
                "numpy": None,
            }
        )
        bench_path = folder / "bench-quick.json"
        bench = json.loads(bench_path.read_text()) if bench_path.is_file() else None
        seconds = folder / "seconds"
        cpus[folder.name] = {
            "tests": test_counts(folder / "pytest.xml"),
            "parity": parity["parity"],
            "cpu": parity["cpu"],
            "numpy": parity["numpy"],
            "python": bench["cpu"]["python"] if bench else None,
            "bench_quick": bench,
            "wall_s": int(seconds.read_text()) if seconds.is_file() else None,
        }
    return {"qemu": qemu, "emulated": True, "note": EMULATED, "cpus": cpus}


def ok(result: dict[str, Any]) -> bool:
    """Every CPU ran its parity tests, none failed, errored or was skipped, the bench ran."""
    return bool(result["cpus"]) and all(
        c["tests"]["tests"] > 0
        and c["tests"]["passed"] == c["tests"]["tests"]
        and c["parity"]
        and c["bench_quick"] is not None
        for c in result["cpus"].values()
    )


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# edgesleep on an emulated aarch64 (qemu-user)",
        "",
        f"{result['qemu']}; command: `sudo bash bench/arm/setup.sh && bash bench/arm/run.sh`. "
        "Parity: this aarch64 CPU model against the x86 host that exported the models, on a "
        "SYNTHETIC 50-epoch night (probabilities; front-end images in dB or beats/min).",
        "",
    ]
    cpus = result["cpus"].items()
    tests = [
        [name, c["cpu"]["machine"], " ".join(c["cpu"]["isa"]) or "-", c["python"], c["numpy"],
         c["cpu"]["onnxruntime"], f"{t['passed']} / {t['tests']}", t["failures"], t["errors"],
         t["skipped"], c["wall_s"]]
        for name, c in cpus
        for t in [c["tests"]]
    ]  # fmt: skip
    lines += markdown_table(["QEMU_CPU", "machine", "ISA flags seen", "Python", "numpy",
                             "onnxruntime", "tests passed", "failed", "errors", "skipped",
                             "wall s"], tests)  # fmt: skip
    parity = [
        [name, variant, f"{p['image_max_abs']:.2g}", f"{p['offline_max_abs']:.2g}",
         f"{p['offline_agreement']:.2%}", f"{p['stream_max_abs']:.2g}",
         f"{p['stream_agreement']:.2%}", f"{p['stream_vs_offline_max_abs']:.2g}"]
        for name, c in cpus
        for variant, p in c["parity"].items()
    ]  # fmt: skip
    lines += ["", *markdown_table(["QEMU_CPU", "model / precision", "max image diff",
                                   "max prob diff offline", "agree offline",
                                   "max prob diff stream", "agree stream",
                                   "stream vs offline"], parity)]  # fmt: skip
    timings = [
        [name, f"{r['model']} {r['precision']}", f"{r['model_ms']['step_delay_0']['p50']:.2f}",
         f"{r['model_ms']['two_call']['p50']:.2f}",
         f"{r['stream']['step']['end_to_end_ms']['p50']:.2f}",
         f"{r['stream']['step']['cpu_s_per_hour']:.1f}",
         f"{r['offline_s']:.1f}", "-" if agree is None else f"{agree:.2%}"]
        for name, c in cpus
        for r in (c["bench_quick"] or {}).get("rows", [])
        if r["threads"] == 1
        for agree in [r.get("parity_vs_fp32", {}).get("argmax_agreement")]
    ]  # fmt: skip
    lines += ["", f"**{EMULATED}**", "",
              *markdown_table(["QEMU_CPU", "variant", "step ms", "two-call ms", "end to end ms",
                               "CPU-s/h", "1000 epochs offline s", "agree vs fp32"],
                              timings)]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--qemu", required=True, help="qemu-aarch64 --version, first line")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = summarize(args.results, args.qemu)
    result["ok"] = ok(result)
    write_report(args.out, "arm_emulated", result, markdown(result))
    for name, c in result["cpus"].items():
        t = c["tests"]
        print(f"{name}: {t['passed']}/{t['tests']} passed, {t['failures']} failed, "
              f"{t['errors']} errors, {t['skipped']} skipped")  # fmt: skip
    print(f"written: {args.out}/arm_emulated.json and .md")
    if not result["ok"]:
        sys.exit("emulated aarch64 run incomplete or failing (see above)")


if __name__ == "__main__":
    main()
