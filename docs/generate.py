"""The manual's generated pages, written into ``docs/_generated/`` at every build (never by
hand, so never stale): the CLI reference from the Typer app, the model cards from the
shipped models' metadata, and one page per result file of ``bench/results`` and
``studies/results``, rendered from its JSON by the command that measured it.

Run: ``python docs/generate.py`` (``docs/conf.py`` runs it before every build);
``python docs/generate.py --check`` also fails when a committed ``results/*.md`` differs
from what its JSON renders to (a report edited by hand or left behind by a change).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_generated"

# result JSON -> the module whose ``markdown(result)`` wrote its .md beside it
RENDERERS = {
    "bench/results/bench.json": "edgesleep.bench.runtime",
    "bench/results/arm_emulated.json": "edgesleep.bench.emulated",
    "bench/results/offline_memory.json": "edgesleep.bench.offline_memory",
    "bench/results/parser.json": "edgesleep.bench.parser",
    "bench/results/sinks.json": "edgesleep.bench.sinks",
    "bench/results/soak.json": "edgesleep.bench.soak",
    "bench/results/train_speed.json": "edgesleep.bench.train_speed",
    "bench/results/open_data.json": "edgesleep.bench.open_data",
    "studies/results/cardiac_slpdb.json": "studies/cardiac_slpdb.py",
    "studies/results/distill_synthetic.json": "studies/distill_synthetic.py",
    "studies/results/export.json": "studies/export_table.py",
    "studies/results/heart_clock.json": "studies/heart_context.py",
    "studies/results/heart_clock_5folds.json": "studies/heart_context.py",
    "studies/results/heart_context.json": "studies/heart_context.py",
    "studies/results/heart_context_5folds.json": "studies/heart_context.py",
    "studies/results/heart_pooled.json": "studies/heart_pooled.py",
    "studies/results/heart_selection.json": "studies/heart_selection.py",
    "studies/results/lookahead.json": "studies/lookahead.py",
    "studies/results/peers.json": "studies/peers/compare.py",
}


def _module(name: str) -> ModuleType:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = ROOT / name
    sys.path.insert(0, str(path.parent))  # a study imports its siblings
    try:
        spec = importlib.util.spec_from_file_location(f"_docs_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def render(json_path: str) -> str:
    """The Markdown report of a result file, from its JSON."""
    result = json.loads((ROOT / json_path).read_text())
    markdown: Callable[..., str] = _module(RENDERERS[json_path]).markdown
    if json_path.endswith("soak.json"):
        return markdown(result, result.get("watch"))
    return markdown(result)


def _demote(text: str) -> str:
    """A report's headings one level down, under the page's own title."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())


def results_pages() -> list[str]:
    """One page per result file: rendered from its JSON, or its committed report when no
    renderer exists (``dsp_speed``, ``stride``, ``synth_realism``: the commands that write
    both)."""
    names = []
    for folder in ("bench/results", "studies/results"):
        for path in sorted((ROOT / folder).glob("*.json")):
            rel = f"{folder}/{path.name}"
            md = path.with_suffix(".md")
            if rel in RENDERERS:
                body = render(rel)
            elif md.is_file():
                body = md.read_text()
            else:
                continue  # data for another report (e.g. heart_models.json, rpeaks.json)
            name = f"{folder.split('/')[0]}-{path.stem}"
            title = f"# `{rel.removesuffix('.json')}`\n\nFrom `{rel}`.\n\n"
            (OUT / "results" / f"{name}.md").write_text(title + _demote(body).strip() + "\n")
            names.append(name)
    return names


def check_reports() -> list[str]:
    """Committed reports that differ from their JSON's rendering."""
    stale = []
    for rel in RENDERERS:
        md = (ROOT / rel).with_suffix(".md")
        if md.is_file() and md.read_text() != render(rel):
            stale.append(str(md.relative_to(ROOT)))
    return stale


def cli_page() -> None:
    """The CLI reference, from the Typer app itself (``typer ... utils docs``: Typer vendors
    its own click, so click-based doc plugins cannot read it)."""
    out = OUT / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "edgesleep.cli", "utils", "docs", "--name",
         "edgesleep", "--title", "Command-line reference", "--output", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    text = out.read_text().replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">")
    out.write_text(text)


def _card(name: str, info: Any, size_kb: float) -> list[str]:
    card = info.card or {}
    lines = [f"## `{name}`", "", f"Classes: {' / '.join(info.labels)}. Input: "
             f"`{info.input['kind']}` images, from {info.signal_channel} or a heart series. "
             f"Export: {info.precision}, {size_kb:.0f} KB, L = {info.seq_len}, "
             f"export id `{info.raw['export_id']}`.", ""]  # fmt: skip
    for key in ("intended_use", "limits"):
        if card.get(key):
            lines += [f"**{key.replace('_', ' ').capitalize()}**: {card[key]}", ""]
    data = card.get("data", {})
    if data:
        lines += ["| cohort | subjects | nights | scored epochs | what |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v.get('subjects')} | {v.get('nights')} | {v.get('scored_epochs')} "
                  f"| {v.get('what', '')} |" for k, v in data.items()]  # fmt: skip
        lines += ["", "Citations: " + " ".join(v.get("citation", "") for v in data.values()), ""]
    evaluation = card.get("evaluation", {})
    rows = [(k, v) for k, v in evaluation.items() if isinstance(v, dict) and "kappa" in v]
    if rows:
        labels = list(info.labels)
        lines += [f"Evaluation: {evaluation.get('protocol', '')}.", "",
                  "| cohort | accuracy | κ | macro F1 | subject κ (mean ± sd) | "
                  + " | ".join(f"recall {c}" for c in labels) + " |",
                  "|---|---|---|---|---|" + "---|" * len(labels)]  # fmt: skip
        for k, v in rows:
            recall = v.get("recall", {})
            lines.append(
                f"| {k} | {v['accuracy']:.3f} | {v['kappa']:.3f} | {v['macro_f1']:.3f} | "
                f"{v.get('subject_kappa_mean', float('nan')):.3f} ± "
                f"{v.get('subject_kappa_sd', float('nan')):.3f} | "
                + " | ".join(f"{recall.get(c, float('nan')):.3f}" for c in labels)
                + " |"
            )
        lines.append("")
        biased = [(k, v) for k, v in rows if "fraction_bias" in v]
        if biased:
            lines += ["The night summary against the expert (staged − expert; mean over nights): "
                      "each stage's share of the night in percentage points [subject-bootstrap "
                      "95 % CI], total sleep time in minutes [95 % limits of agreement].", "",
                      "| cohort | " + " | ".join(f"{c} bias" for c in labels)
                      + " | TST bias, min |", "|---|" + "---|" * (len(labels) + 1)]  # fmt: skip
            for k, v in biased:
                fb, tst = v["fraction_bias"], v["TST_bias_min"]
                cells = [f"{fb[c]['mean']:+.1f} [{fb[c]['ci'][0]:+.1f}, {fb[c]['ci'][1]:+.1f}]"
                         for c in labels]  # fmt: skip
                lines.append(f"| {k} | " + " | ".join(cells) + f" | {tst['mean']:+.0f} "
                             f"[{tst['loa'][0]:+.0f}, {tst['loa'][1]:+.0f}] |")  # fmt: skip
            lines.append("")
    return lines


def models_page() -> None:
    """Model cards of the shipped models, from their metadata."""
    from edgesleep.shipped import shipped_model, shipped_names

    lines = ["# Shipped models", "",
             "The models inside the package (`edgesleep stage` and `edgesleep stream` use "
             "`heart-4class` without `--model`, `heart-3class` with `--classes 3`). This page "
             "is generated from each model's own metadata (its card).", ""]  # fmt: skip
    for name in shipped_names():
        model = shipped_model(name)
        size = sum(p.stat().st_size for p in model.folder.glob("*.onnx")) / 1024
        lines += _card(name, model.info, size)
    (OUT / "models.md").write_text("\n".join(lines).rstrip() + "\n")


def main(check: bool = False) -> int:
    (OUT / "results").mkdir(parents=True, exist_ok=True)
    cli_page()
    models_page()
    names = results_pages()
    index = ["# Result files", "", "Every committed measurement, rendered from its JSON.", "",
             "```{toctree}", ":maxdepth: 1", "", *[f"{n}" for n in names], "```", ""]  # fmt: skip
    (OUT / "results" / "index.md").write_text("\n".join(index))
    if check:
        stale = check_reports()
        if stale:
            print("stale reports (rerun their command or fix the renderer):", *stale)
            return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail on a stale committed report")
    sys.exit(main(parser.parse_args().check))
