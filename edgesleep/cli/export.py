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
    card: Annotated[
        Path | None,
        typer.Option(
            help="Model card (JSON: name, data with each cohort's citation and "
            "licence, intended_use, limits) carried in the metadata; `models add` "
            "installs only carded exports."
        ),
    ] = None,
) -> None:
    """Export a checkpoint to ONNX (encoder, sequence model, whole model), optionally int8,
    with a parity report against torch."""
    need("export")
    from edgesleep.export.pipeline import ExportOptions, export_model, read_card

    card_fields = read_card(card) if card is not None else None
    options = ExportOptions(quantize, target, calibration, data, card=card_fields)
    report = export_model(checkpoint, out, options)
    typer.echo((out / "report.md").read_text())
    if "parity" not in report["variants"]["fp32"]:
        typer.echo("no parity measured: pass --data or --calibration (a labelled dataset)")
