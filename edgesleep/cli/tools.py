"""``edgesleep bench | demo | models``: measure exported models, run the whole path on
synthetic data, list, install and remove models, the registered architectures and input
kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgesleep.cli.app import app
from edgesleep.cli.common import need, print_table
from edgesleep.errors import InputError


@app.command("bench")
def bench(
    models: Annotated[
        list[Path] | None, typer.Argument(help="Exported model folders.", show_default=False)
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for bench.json / bench.md.")] = Path(
        "bench/results"
    ),
    quick: Annotated[bool, typer.Option(help="40 epochs and 5 s at real time.")] = False,
    sfreq: Annotated[float, typer.Option(help="Device rate of the test signal, Hz.")] = 100.0,
    threads: Annotated[
        list[int] | None,
        typer.Option(help="onnxruntime threads to measure (repeat the option); default 1 "
                     "and all cores."),
    ] = None,
    sinks: Annotated[
        bool,
        typer.Option(help="Measure what --lsl-out and --serve cost a stream instead (5 fresh "
                     "processes, 300 s at real time each; 60 s with --quick)."),
    ] = False,
) -> None:  # fmt: skip
    """Latency, CPU per hour, wake-ups, memory, size and parity of exported models on this
    machine (fp32 and int8, 1 thread and all cores), beside the naive stream and torch."""
    import logging

    if sinks:
        from edgesleep.bench import sinks as sink_bench

        result = sink_bench.run(60.0 if quick else 300.0)
        sink_bench.write(result, out)
        typer.echo(sink_bench.markdown(result))
        return
    if not models:
        from edgesleep.errors import UsageError

        raise UsageError("name the exported model folders to measure (or pass --sinks)")

    from edgesleep.bench.runtime import goals, run, summary_rows, write

    log = logging.getLogger("edgesleep")
    result = run(models, quick, sfreq, progress=lambda s: log.info("bench: %s", s),
                 thread_counts=threads)  # fmt: skip
    write(result, out, "bench-quick" if quick else "bench")
    columns = ["variant", "step ms", "two-call ms", "end to end ms", "CPU-s/h", "offline s",
               "step KB"]  # fmt: skip
    print_table("edgesleep bench (p50 per new epoch)", columns, summary_rows(result))
    print_table("goals", ["goal", "variant", "measured", "goal", "met"], goals(result))
    typer.echo(f"written: {out}/bench{'-quick' if quick else ''}.json and .md")


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes.")] = Path("runs/demo"),
    retrain: Annotated[bool, typer.Option(help="Train again even if a model exists.")] = False,
    channel: Annotated[str, typer.Option(help="Channel of the demo model.")] = "EOG horizontal",
) -> None:
    """SYNTHETIC end to end: synthesize nights, train a compact student (about a minute),
    export it (fp32 + int8), stream a held-out night through the stager in 1-s packets, and
    report agreement with the generator's truth and the per-epoch latency."""
    need("export")
    from edgesleep.workflows.demo import run_demo

    report = run_demo(workdir, channel, retrain, echo=typer.echo)
    print_table(
        "demo (SYNTHETIC data: these numbers say nothing about sleep)",
        ["what", "value"],
        [[k, v] for k, v in report.items()],
    )


models_app = typer.Typer(
    help="Models: the shipped and installed ones, architectures and input kinds; add, remove.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Where models are installed (default $EDGESLEEP_MODELS, else "
                 "~/.local/share/edgesleep/models)."),
]  # fmt: skip


@models_app.callback()
def models(ctx: typer.Context, models_dir: DirOption = None) -> None:
    """The models shipped in the package and the ones installed (with their cards' data and
    cross-validated κ), the registered architectures (what each declares) and the input
    kinds; `models add` and `models remove` install and remove models by name."""
    if ctx.invoked_subcommand is not None:
        return
    from edgesleep.dsp.inputs import get_kind, kind_names
    from edgesleep.installed import installed_model_folders
    from edgesleep.ort import ExportedModel
    from edgesleep.shipped import card_summary, shipped_model, shipped_names

    summaries = {name: card_summary(shipped_model(name)) for name in shipped_names()}
    installed = installed_model_folders(models_dir)
    summaries |= {f"{name} (installed)": card_summary(ExportedModel(folder))
                  for name, folder in installed.items()}  # fmt: skip
    columns = ["classes", "input", "KB", "data", "kappa"]
    print_table("models (`stage` and `stream` without --model: the shipped heart model of "
                "--classes 3|4; --model NAME for any)",
                ["model", *columns[:-1], "κ pooled (subject mean ± sd)"],
                [[name, *(s[c] for c in columns)] for name, s in summaries.items()])  # fmt: skip
    print_table("their night summaries against the expert (held-out, staged − expert, mean)",
                ["model", "classes", "stage share, points", "TST, min [95 % LoA]"],
                [[name, s["classes"], s["fraction_bias"], s["TST_bias"]]
                 for name, s in summaries.items()])  # fmt: skip
    kinds = [[k, "x".join(map(str, get_kind(k).image_shape)), get_kind(k).help]
             for k in kind_names()]  # fmt: skip
    print_table("input kinds", ["input", "image", "what"], kinds)
    try:
        need("train")
    except InputError:
        typer.echo("architectures to train: install the train extra to list them")
        return
    from edgesleep.train.models import model_class, model_names

    rows = []
    for name in model_names():
        d = model_class(name).declaration()
        parts = ", ".join(f"{k}: {'+'.join(v) or '-'}" for k, v in d.finetune_parts.items())
        rows.append([name, str(d.version), "yes" if d.causal else "no", d.quantization,
                     d.streaming, d.classifier, parts])  # fmt: skip
    columns = ["model", "version", "causal", "int8", "streams", "classifier", "finetune parts"]
    print_table("architectures (to train)", columns, rows)


@models_app.command("add")
def models_add(
    source: Annotated[
        str, typer.Argument(help="A bundle: its folder, an archive of it, or an http(s) URL.")
    ],
    sha256: Annotated[
        str | None,
        typer.Option(help="The archive's sha256 (required for a URL, checked for a file)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Installed name (default: the card's).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an installed model of that name.")] = False,
    models_dir: DirOption = None,
) -> None:
    """Install a model someone trained (a bundle: an export with SHA256SUMS over every file
    and a model card; format version, metadata bounds and every digest are checked), to be
    used as --model NAME."""
    from edgesleep.installed import add_model

    installed, folder = add_model(source, sha256, name, models_dir, force)
    typer.echo(f"installed {installed!r} in {folder}; use it with --model {installed}")


@models_app.command("remove")
def models_remove(
    name: Annotated[str, typer.Argument(help="An installed model's name.")],
    models_dir: DirOption = None,
) -> None:
    """Remove an installed model (shipped models stay)."""
    from edgesleep.installed import remove_model

    typer.echo(f"removed {remove_model(name, models_dir)}")


@app.command("compare")
def compare(
    staged: Annotated[
        Path, typer.Argument(help="A staged night (stage's CSV), or a folder of them.")
    ],
    expert: Annotated[
        Path,
        typer.Argument(
            help="The expert hypnogram (EDF+, NSRR XML, Walch labels, slpdb or "
            "hypnogram CSV), or a folder of them."
        ),
    ],
    subject: Annotated[
        str | None,
        typer.Option(
            help="Regex whose first group in a night's name is its subject "
            "(default: each night its own)."
        ),
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one row per night.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every figure.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write Bland-Altman plots (PNG; the plot extra).")
    ] = None,
) -> None:
    """Agreement between staged nights and the expert's: accuracy, kappa, macro F1, the
    confusion matrix and each class's recall (in the coarser class set of the two), and as
    a wearable validation study reports it: the bias of each stage fraction (with a
    subject-bootstrap 95 % interval), of TST, SE, WASO, SOL, REM latency, awakenings and
    minutes per stage, with 95 % limits of agreement."""
    import json

    from edgesleep.agreement import bland_altman_png, write_nights_csv
    from edgesleep.api import compare as compare_files

    r = compare_files(staged, expert, subject)
    a = r["agreement"]
    typer.echo(
        f"{staged.name} vs {expert.name} ({', '.join(r['formats'])}): {a['n_nights']} "
        f"night(s) of {a['subjects']} subject(s), {r['n_epochs']} epochs scored in both; "
        f"accuracy {r['accuracy']:.3f}, kappa {r['kappa']:.3f}, macro F1 {r['macro_f1']:.3f}"
    )
    labels = r["classes"]
    rows = [[f"expert {label}", *map(str, row), f"{100 * recall:.1f}"]
            for label, row, recall in zip(labels, r["confusion"],
                                          r["per_class"]["sensitivity"], strict=True)]  # fmt: skip
    print_table("confusion (rows: expert, columns: staged)", ["", *labels, "recall %"], rows)
    bias_rows = []
    for key, b in a["bias"].items():
        ci = b.get("ci")
        ci_text = f"{ci[0]:+.1f} .. {ci[1]:+.1f}" if ci and ci[0] == ci[0] else ""
        loa = f"{b['loa'][0]:+.1f} .. {b['loa'][1]:+.1f}" if b["sd"] == b["sd"] else ""
        bias_rows.append([key, f"{b['mean']:+.1f}", ci_text, loa])
    columns = ["figure", "bias", "bootstrap 95 % CI", "limits of agreement"]
    title = "staged - expert (mean over nights; % of the epochs both scored, minutes)"
    print_table(title, columns, bias_rows)
    if csv_out is not None:
        write_nights_csv(csv_out, a)
    if json_out is not None:
        json_out.write_text(json.dumps(r, indent=2, default=float) + "\n")
    if plot is not None:
        bland_altman_png(plot, a)
