"""``s2clouds landcover``: SEN12MS land-cover baselines (``train``) scored as in the paper
(``benchmark``: OA, AA, kappa with the paper's class merges)."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import parse_options, reader_options

_limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Use only the first N patches."
)


@click.group("landcover")
def landcover() -> None:
    """SEN12MS land cover: train baselines and score them (OA, AA, kappa)."""


@landcover.command("train")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Model folder (landcover.json and landcover.lgbm / landcover.pt).",
)
@click.option(
    "--model",
    type=click.Choice(["lightgbm", "resnet18", "resnet50"]),
    default="lightgbm",
    show_default=True,
    help="lightgbm: trees on per-patch band statistics; resnet18/50: torchvision, from scratch.",
)
@click.option(
    "--task",
    type=click.Choice(["single", "dense"]),
    default="single",
    show_default=True,
    help="single: the patch's majority class; dense: a class per pixel.",
)
@click.option(
    "--input",
    "inputs",
    type=click.Choice(["s2", "s1", "s1s2"]),
    default="s2",
    show_default=True,
    help="S2 (the paper's ten bands), S1 (VV, VH) or both.",
)
@click.option(
    "--layer",
    default="lccs_lu",
    show_default=True,
    help="Land-cover layer to learn: igbp, lccs_lc, lccs_lu, lccs_sh.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="ResNet learning rate.")
@click.option(
    "--rounds", type=click.IntRange(min=1), default=100, show_default=True, help="LightGBM rounds."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    default=None,
    help="Cut patches into tiles of this many pixels, each a patch (the paper: 64).",
)
@_limit_option
@reader_options("SEN12MS reader option, repeatable: e.g. -O split=train -O seasons=summer.")
def train(
    path: Path,
    out_dir: Path,
    model: str,
    task: str,
    inputs: str,
    layer: str,
    epochs: int,
    batch_size: int,
    lr: float,
    rounds: int,
    seed: int,
    tile: int | None,
    limit: int | None,
    options: tuple[str, ...],
) -> None:
    """Train a land-cover baseline on the SEN12MS folder PATH."""
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.train.landcover import LandCoverConfig, reader_options, train_landcover

    config = LandCoverConfig(model, task, inputs, layer, epochs, batch_size, lr, rounds, seed, tile)
    config.check()
    dataset = open_dataset(path, "sen12ms", **(reader_options(config) | parse_options(options)))
    trained = train_landcover(dataset, config, limit=limit)
    trained.save(out_dir)
    click.echo(
        f"trained {trained.name} on {min(limit or len(dataset), len(dataset))} patches "
        f"({len(trained.spec.classes)} classes) -> {out_dir}; score it with "
        f"'s2clouds landcover benchmark PATH --model {out_dir}'"
    )


@landcover.command("benchmark")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model folder from 'landcover train', repeatable (scored side by side).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write CSV, Markdown and HTML report with plots into this folder.",
)
@_limit_option
@reader_options("SEN12MS reader option, repeatable: e.g. -O split=test.")
def benchmark(
    path: Path,
    model_dirs: tuple[Path, ...],
    report_dir: Path | None,
    limit: int | None,
    options: tuple[str, ...],
) -> None:
    """Score land-cover models on the SEN12MS folder PATH: OA, AA, kappa (paper's merges)."""
    from s2clouds.benchmark.report import print_summary, write_report
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.train.landcover import LandCoverModel, reader_options, score_landcover

    models = [LandCoverModel.load(d) for d in model_dirs]
    names = [m.name for m in models]
    named = [
        (n if names.count(n) == 1 else f"{n} ({d.name})", m)
        for n, d, m in zip(names, model_dirs, models, strict=True)
    ]
    needs = reader_options(models[0].config) | {
        "with_s1": any(m.config.inputs != "s2" for m in models)
    }
    dataset = open_dataset(path, "sen12ms", **(needs | parse_options(options)))
    scorer = score_landcover(named, dataset, limit=limit)
    print_summary(scorer)
    if report_dir is not None:
        files = write_report(scorer, report_dir)
        click.echo(
            f"report written to {report_dir}: {files.html.name} and {len(files.figures)} figures"
        )
