"""``edgesleep export``: checkpoint -> ONNX (fp32, int8) with a parity report (the
``export`` extra: torch and onnx)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgesleep.cli.app import app
from edgesleep.cli.common import Target, need


@app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt) to export.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("exported"),
    quantize: Annotated[bool, typer.Option(help="Also write int8 graphs.")] = False,
    target: Annotated[
        Target, typer.Option(help="int8 scheme: portable (safe everywhere), x86 or arm64.")
    ] = "portable",
    calibration: Annotated[
        Path | None, typer.Option(help="Dataset of real-shaped nights for int8 calibration.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Labelled dataset for parity (default: --calibration).")
    ] = None,
) -> None:
    """Export a checkpoint to ONNX (encoder, sequence model, whole model), optionally int8,
    with a parity report against torch."""
    need("export")
    from edgesleep.export.pipeline import ExportOptions, export_model

    report = export_model(checkpoint, out, ExportOptions(quantize, target, calibration, data))
    typer.echo((out / "report.md").read_text())
    if "parity" not in report["variants"]["fp32"]:
        typer.echo("no parity measured: pass --data or --calibration (a labelled dataset)")
