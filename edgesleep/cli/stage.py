"""``edgesleep stage | stream | emulate``: score nights, stage a live stream, play a
recording as a wearable (the device runtime: numpy and onnxruntime)."""

from __future__ import annotations

import logging
import signal
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from edgesleep.cli.app import app, fail
from edgesleep.cli.common import HeartSource, Precision, print_table

ModelPath = Annotated[
    Path | None,
    typer.Option(
        help="Exported model folder or .onnx file, or a shipped or installed model's "
        "name (`edgesleep models`; default: the shipped heart model)."
    ),
]
Classes = Annotated[
    int | None,
    typer.Option(help="Without --model: the shipped heart model's classes, 4 (W/Light/Deep/"
                 "REM, the default) or 3 (W/NREM/REM)."),
]  # fmt: skip
Delay = Annotated[int | None, typer.Option(help="Readout delay K in epochs (default: L - 1).")]
PrecisionOption = Annotated[
    Precision | None, typer.Option(help="Precision (default: int8 when exported).")
]


def load_model(model: Path | None, precision: str | None, classes: int | None) -> Any:
    """``--model``, or the shipped heart model (said on stderr)."""
    from edgesleep.errors import UsageError
    from edgesleep.installed import resolve_model
    from edgesleep.ort import ExportedModel
    from edgesleep.shipped import default_model

    if model is not None:
        if classes is not None:
            raise UsageError("--classes picks a shipped model; a --model has its own classes")
        return ExportedModel(resolve_model(model), precision)
    exported = default_model(classes)
    data = (exported.info.card or {}).get("data", {})
    subjects = sum(cohort["subjects"] for cohort in data.values())
    typer.echo(
        f"no --model: the shipped {exported.folder.name} ({' / '.join(exported.info.labels)}; "
        f"trained on {subjects} adults of {len(data)} cohorts, see `edgesleep models`)",
        err=True,
    )
    return exported


def check_delay(model: Any, delay: int | None) -> None:
    """Refuse a readout delay the model cannot take, before any night is read."""
    from edgesleep.errors import UsageError
    from edgesleep.readout import readout_for

    try:
        readout_for(model, delay)
    except ValueError as err:
        raise UsageError(f"--delay {err}") from None


def _night_row(name: str, hyp: Any) -> list[str]:
    summary = hyp.summary()
    counts = Counter(hyp.labels[s] if s >= 0 else "ART" for s in hyp.stages)
    shares = " ".join(f"{k} {100 * v / max(hyp.n_epochs, 1):.0f}%" for k, v in counts.items())
    return [name, str(hyp.n_epochs), f"{summary['TST']:.0f}", f"{summary['SE']:.1f}",
            str(hyp.flagged), shares]  # fmt: skip


@app.command("stage")
def stage(
    nights: Annotated[
        list[Path],
        typer.Argument(help="EDF/EDF+ recordings, or beat / heart-rate CSV files, to score."),
    ],
    model: ModelPath = None,
    classes: Classes = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("staged"),
    channel: Annotated[
        str | None, typer.Option(help="Channel to score (default: the model's).")
    ] = None,
    delay: Delay = None,
    precision: PrecisionOption = None,
    plot: Annotated[bool, typer.Option(help="Also write a hypnogram PNG.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Score nights already scored.")] = False,
    input_source: Annotated[
        HeartSource | None,
        typer.Option("--input", help="What a CSV without a header line holds."),
    ] = None,
) -> None:
    """Score whole nights: hypnogram CSV, EDF+ annotations, summary JSON (and PNG). A night
    that fails is listed with its reason and the others are staged; the exit code is 1 if
    any failed. A rerun skips the nights already staged and retries the others."""
    from rich.progress import track

    from edgesleep.api import stage_night
    from edgesleep.errors import InputError

    exported = load_model(model, precision, classes)
    check_delay(exported, delay)
    rows, failed = [], 0
    for night in track(nights, description="staging", disable=len(nights) < 2):
        done = out / f"{night.stem}.json"
        if done.is_file() and not overwrite:
            rows.append([night.name, "already staged", "", "", "", f"{done}; --overwrite"])
            continue
        try:
            hyp = stage_night(night, exported, out, channel, delay, plot, input_source)
        except (InputError, OSError) as err:
            failed += 1
            rows.append([night.name, "FAILED", "", "", "", str(err)])
            continue
        except Exception as err:  # noqa: BLE001 (one night's bug must not end the batch)
            failed += 1
            logging.getLogger("edgesleep").exception("%s: internal error", night)
            why = f"internal error {type(err).__name__}: {err} (please report it)"
            rows.append([night.name, "FAILED", "", "", "", why])
            continue
        rows.append(_night_row(night.name, hyp))
    columns = ["night", "epochs", "TST min", "SE %", "flagged", "stages"]
    print_table(f"staged with {exported.folder} -> {out}", columns, rows)
    if failed:
        fail(f"{failed} of {len(nights)} nights failed (listed above); the others are staged", 1)


def _status(r: Any, report: Any, n_classes: int, source: Any) -> str:
    """The live line: epoch, clock, stage and probability, flags, gaps, drops, reconnects."""
    from edgesleep.io.writers import label_of

    stage = label_of(r.stage, n_classes) if r.stage >= 0 else "ART"
    hours, rest = divmod(int(r.onset_s), 3600)
    stats = source.stats
    return (
        f"epoch {r.index} {hours:02d}:{rest // 60:02d}:{rest % 60:02d} | {stage} "
        f"{r.probabilities.max():.2f} | flagged {report.flagged} | gaps {report.gaps} | "
        f"drops {int(stats.get('queue_drops', 0))} | reconnects {int(stats.get('reconnects', 0))}"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


SOURCE_HELP = (
    "Where samples come from: serial:PORT[?baud=N] (the edgesleep protocol), "
    "stdin:?sfreq=HZ[&channels=A,B] (CSV lines), edf:FILE[?speed=X&channel=C] (replay), "
    "synthetic:[?seed=N&epochs=N&speed=X], lsl:type=EEG|name=N[&kind=rr&idle=S] (Lab "
    "Streaming Layer), brainflow:board=ID[&serial_port=P] (BrainFlow; board=synthetic)."
)


def legacy_spec(port: str | None, replay: Path | None, synthetic: bool, sfreq: float | None,
                baud: int, speed: float, seed: int, epochs: int | None) -> Any:  # fmt: skip
    """The source spec that the options of edgesleep 0.1 name (``--port``, ``--port -``,
    ``--replay``, ``--synthetic``; deprecated: a warning names the spec); None when none is
    given."""
    import warnings

    from edgesleep.errors import UsageError
    from edgesleep.sources import SourceSpec, parse_spec

    def deprecated(spec: SourceSpec) -> SourceSpec:
        what = f"the source options of edgesleep 0.1 are deprecated: pass `stream '{spec}'`"
        warnings.warn(what, DeprecationWarning, stacklevel=3)
        return spec

    named = sum([port is not None, replay is not None, synthetic])
    if named > 1:
        raise UsageError("name one source: --port PORT (or - for CSV on stdin), --replay EDF "
                         "or --synthetic")  # fmt: skip
    if port == "-":
        if sfreq is None:
            raise UsageError("CSV on stdin carries no rate: pass --sfreq (Hz)")
        return deprecated(parse_spec(f"stdin:?sfreq={sfreq}"))
    if port is not None:
        return deprecated(SourceSpec("serial", port, {"baud": baud}))
    if replay is not None:
        return deprecated(SourceSpec("edf", str(replay), {"speed": speed, "channel": ""}))
    if synthetic:
        return deprecated(SourceSpec("synthetic", "", {"seed": seed, "epochs": epochs or 0,
                                                       "speed": speed, "channel": ""}))  # fmt: skip
    return None


@app.command("stream")
def stream(
    source: Annotated[str | None, typer.Argument(help=SOURCE_HELP, show_default=False)] = None,
    model: ModelPath = None,
    classes: Classes = None,
    out: Annotated[Path, typer.Option(help="Hypnogram CSV, one row per epoch.")] = Path(
        "stages.csv"
    ),
    channel: Annotated[
        str | None,
        typer.Option(help="Channel to stage, or a derivation A-B (default: the model's kind)."),
    ] = None,
    series: Annotated[
        HeartSource | None,
        typer.Option(help="Stage from the source's heart events (beats or heart rates)."),
    ] = None,
    delay: Delay = None,
    revisions: Annotated[
        bool, typer.Option(help="Emit each epoch at once and re-emit it when it changes.")
    ] = False,
    precision: PrecisionOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue --out if it is the same night, else start a new one.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No live status line.")] = False,
    record: Annotated[
        Path | None,
        typer.Option(help="Also keep what is received: a signal as .edf, heart events as .csv."),
    ] = None,
    lsl_out: Annotated[
        str | None, typer.Option(help="Also publish each epoch on an LSL stream of this name.")
    ] = None,
    serve: Annotated[
        str | None,
        typer.Option(help="Also serve the night live on [HOST:]PORT (default host 127.0.0.1)."),
    ] = None,
    serve_public: Annotated[
        bool, typer.Option(help="Allow --serve on an address other than this machine's.")
    ] = False,
    # the forms of edgesleep 0.1, kept working and hidden: the SOURCE spec replaces them
    port: Annotated[str | None, typer.Option(hidden=True)] = None,
    replay: Annotated[Path | None, typer.Option(hidden=True)] = None,
    synthetic: Annotated[bool, typer.Option(hidden=True)] = False,
    sfreq: Annotated[float | None, typer.Option(hidden=True)] = None,
    baud: Annotated[int, typer.Option(hidden=True)] = 115200,
    speed: Annotated[float, typer.Option(hidden=True)] = 0.0,
    seed: Annotated[int, typer.Option(hidden=True)] = 0,
    epochs: Annotated[int | None, typer.Option(hidden=True)] = None,
    input_source: Annotated[HeartSource | None, typer.Option("--input", hidden=True)] = None,
) -> None:
    """Stage a live stream: one row per 30-s epoch, written and flushed as it is scored."""
    from rich.console import Console
    from rich.live import Live

    from edgesleep.errors import UsageError
    from edgesleep.sources import open_source, parse_spec
    from edgesleep.stream import StreamOptions, stream_to_csv

    old = legacy_spec(port, replay, synthetic, sfreq, baud, speed, seed, epochs)
    if (old is None) == (source is None):
        raise UsageError(
            "name one source: " + ("a SOURCE spec or the old options, not both" if old else
                                   "e.g. serial:/dev/ttyUSB0, stdin:?sfreq=256, edf:night.edf "
                                   "or synthetic: (see --help)")
        )  # fmt: skip
    if series is not None and input_source is not None and series != input_source:
        raise UsageError("--series and --input (its old name) disagree: pass --series only")
    if input_source is not None:
        import warnings

        warnings.warn("--input of stream is deprecated: use --series", DeprecationWarning,
                      stacklevel=1)  # fmt: skip
    spec = old if old is not None else parse_spec(str(source))
    sinks: list[Any] = []
    if record is not None:
        from edgesleep.record import Recorder, check_record

        check_record(record, series or input_source, overwrite)
        sinks.append(Recorder(record, series or input_source))
    exported = load_model(model, precision, classes)
    if lsl_out is not None:
        from edgesleep.lsl import LslOutlet

        sinks.append(LslOutlet(lsl_out, exported.info.n_classes))
    if serve is not None:
        from edgesleep.live import LivePage

        page = LivePage(serve, exported.info.n_classes, serve_public)
        sinks.append(page)
        if page.public:
            typer.echo(f"WARNING: the night is served to the network at {page.url}", err=True)
        typer.echo(f"live page: {page.url}", err=True)
    signal.signal(signal.SIGTERM, _interrupt)  # systemd's stop: like Ctrl-C, flush and exit
    opened = open_source(spec, channel or exported.info.signal_channel)
    opts = StreamOptions(channel, delay, revisions, overwrite, resume, series or input_source)
    n_classes = exported.info.n_classes
    with Live(console=Console(stderr=True), auto_refresh=False, transient=True) as live:

        def show(r: Any, report: Any) -> None:
            if not quiet:
                live.update(_status(r, report, n_classes, opened), refresh=True)

        report = stream_to_csv(exported, opened, out, opts, show, sinks)
    if report.interrupted:
        typer.echo("interrupted: the epochs so far are in the output")
    print_table(f"stream {spec} -> {out}", ["what", "value"], report.rows())


@app.command("emulate")
def emulate(
    recording: Annotated[
        Path,
        typer.Option("--from", help="EDF/EDF+ recording, or a beat / heart-rate CSV, to play."),
    ],
    port: Annotated[
        str, typer.Option(help="Serial port to write to, or pty for a pseudo-terminal.")
    ] = "pty",
    link: Annotated[
        Path, typer.Option(help="With --port pty: a stable path that points at it.")
    ] = Path("/tmp/edgesleep-wearable"),
    channel: Annotated[
        list[str] | None, typer.Option(help="Channels to send (default: all at the first rate).")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="1 real time, 0 as fast as the port takes it.")
    ] = 1.0,
    faults: Annotated[
        str, typer.Option(help="Comma-separated: garbage,drops,disconnect (none if empty).")
    ] = "",
    seed: Annotated[int, typer.Option(help="Seed of the faults.")] = 0,
    baud: Annotated[int, typer.Option(help="Baud rate of a real port.")] = 115200,
    linger: Annotated[
        float, typer.Option(help="Seconds to keep the port open after the end frame.")
    ] = 3.0,
    input_source: Annotated[
        HeartSource | None,
        typer.Option("--input", help="What a CSV without a header line holds."),
    ] = None,
) -> None:
    """Play a recording as a wearable speaking the edgesleep protocol (for demos and tests)."""
    import time

    from edgesleep import emulate as emu
    from edgesleep.io.heart import SERIES_SUFFIXES, read_series

    fault_set = emu.Faults.parse(faults, seed)
    series = None
    if recording.suffix.lower() in SERIES_SUFFIXES:  # an events-only wearable
        series = read_series(recording, input_source)
        what = f"{series.source} events, millisecond ticks"
    else:
        data, sfreq, labels = emu.read_recording(recording, channel)
        what = f"{len(labels)} channel(s) at {sfreq:g} Hz"
    sink = emu.PtyPort(link) if port == "pty" else emu.SerialPort(port, baud)
    where = f"{link} -> {sink.link.resolve()}" if isinstance(sink, emu.PtyPort) else port
    typer.echo(f"emulated wearable on {where}: {what}, speed {speed or 'max'}, "
               f"faults {faults or 'none'}")  # fmt: skip
    try:
        if series is not None:
            sent = emu.play_series(sink, series, speed or None)
        else:
            sent = emu.play(sink, data, sfreq, labels, speed or None, fault_set)
        time.sleep(linger)
    except KeyboardInterrupt:
        sent = {}
    finally:
        sink.close()
    typer.echo(" ".join(f"{k}={v}" for k, v in sent.items()))
