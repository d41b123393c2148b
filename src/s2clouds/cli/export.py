"""``s2clouds export``: a training checkpoint -> ONNX model with its weight spec."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import parse_bands


def _numbers(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[float, ...] | None:
    """``0.1,0.2`` -> ``(0.1, 0.2)``."""
    if not value:
        return None
    try:
        return tuple(float(v) for v in value.replace(",", " ").split())
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a list of numbers") from exc


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
@click.option(
    "--bands",
    callback=parse_bands,
    default=None,
    help="A published CloudSEN12 UnetMobV2 checkpoint (.ckpt) or TorchScript model (.pt): "
    "its input bands in order "
    "(e.g. all 13 L1C bands B01,...,B12 with B8A after B08). Needs --licence.",
)
@click.option(
    "--mean", callback=_numbers, default=None, help="Published checkpoint: per-band mean (0)."
)
@click.option(
    "--std", callback=_numbers, default=None, help="Published checkpoint: per-band std (1)."
)
@click.option(
    "--scheme",
    default="cloudsen12",
    show_default=True,
    help="Published checkpoint: label scheme of its output channels.",
)
@click.option(
    "--resolution",
    type=float,
    default=10.0,
    show_default=True,
    help="Published checkpoint: pixel size (m) it was trained at.",
)
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
    bands: tuple[str, ...] | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    scheme: str,
    resolution: float,
) -> None:
    """Export CHECKPOINT (best.pt of 's2clouds train', or with --bands a published CloudSEN12
    UnetMobV2 .ckpt or TorchScript .pt) to ONNX, with its spec embedded and in a sidecar JSON; checks
    onnxruntime against torch. Use it with --model OUTPUT."""
    from s2clouds.train import require_torch

    require_torch()
    from s2clouds.train.export import PublishedCheckpoint, export_onnx

    published = None
    if bands is not None:
        published = PublishedCheckpoint(
            bands=bands,
            licence=licence or "",
            mean=mean,
            std=std,
            scheme=scheme,
            resolution=resolution,
            **({"name": name} if name else {}),
            **({"training_data": training_data} if training_data else {}),
        )
    elif mean is not None or std is not None:
        raise click.UsageError("--mean and --std describe a published checkpoint; add --bands")
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
        published=published,
    )
    click.echo(f"wrote {result.onnx_path} and {result.spec_path}")
    click.echo(f"  onnxruntime vs torch: max probability difference {result.max_abs_diff:.2e}")
    if result.quantized_max_diff is not None:
        click.echo(f"  int8 vs fp32: max probability difference {result.quantized_max_diff:.3f}")
    click.echo(f"  bands {','.join(result.spec.bands)}; sha256 {result.spec.sha256}")
