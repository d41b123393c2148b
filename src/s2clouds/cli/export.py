"""``s2clouds export``: a training checkpoint -> ONNX model with its weight spec."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output .onnx file."
)
@click.option("--quantize", is_flag=True, help="Write int8 dynamically quantised weights.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset.")
@click.option(
    "--tile-size", type=click.IntRange(min=16), default=None, help="Inference tile edge (px)."
)
@click.option(
    "--training-data", default=None, help="Describe the training data in the spec (provenance)."
)
@click.option("--note", "notes", multiple=True, help="Add a note to the spec (repeatable).")
@click.option("--name", default=None, help="Model name in the spec (default: the training name).")
@click.option("--licence", default=None, help="Licence of the weights (follows the training data).")
def export(
    checkpoint: Path,
    output: Path,
    quantize: bool,
    opset: int,
    tile_size: int | None,
    training_data: str | None,
    notes: tuple[str, ...],
    name: str | None,
    licence: str | None,
) -> None:
    """Export CHECKPOINT (best.pt of 's2clouds train') to ONNX, with its spec embedded and
    in a sidecar JSON; checks onnxruntime against torch. Use it with --model OUTPUT."""
    from s2clouds.train import require_torch

    require_torch()
    from s2clouds.train.export import export_onnx

    result = export_onnx(
        checkpoint,
        output,
        opset=opset,
        quantize=quantize,
        tile_size=tile_size,
        training_data=training_data,
        notes=notes,
        name=name,
        licence=licence,
    )
    click.echo(f"wrote {result.onnx_path} and {result.spec_path}")
    click.echo(f"  onnxruntime vs torch: max probability difference {result.max_abs_diff:.2e}")
    if result.quantized_max_diff is not None:
        click.echo(f"  int8 vs fp32: max probability difference {result.quantized_max_diff:.3f}")
    click.echo(f"  bands {','.join(result.spec.bands)}; sha256 {result.spec.sha256}")
