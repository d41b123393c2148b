"""``s2clouds annotate``: the annotation app (``serve``, ``check``, ``export``) and ``fit``,
which turns scribbles on a scene into a full mask (pixel model, no torch).

``s2clouds annotate SCENE --scribbles S -o MASK`` (the command before the app existed) still
works: arguments that name no subcommand go to ``fit``."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds._optional import install_hint
from s2clouds.cli.options import (
    bands_option,
    level_option,
    parse_bands,
    quiet_option,
    resolution_option,
    scale_option,
)


class AnnotateGroup(click.Group):
    """A group that sends arguments naming no subcommand to ``fit`` (the old command)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["fit", *args]
        return super().parse_args(ctx, args)


@click.group("annotate", cls=AnnotateGroup)
def annotate() -> None:
    """Label images: the assisted annotation app (serve, check, export) and fit.

    \b
    s2clouds annotate serve PROJECT       the web app on http://127.0.0.1:8765
    s2clouds annotate check PROJECT       validate PROJECT/project.yaml
    s2clouds annotate export PROJECT -o DIR --scheme cloudsen12
    s2clouds annotate fit SCENE --scribbles S.tif -o MASK.tif
    """


@annotate.command("fit")
@click.argument("source")
@click.option(
    "--scribbles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Single-band raster on the scene's grid: class values where you labelled, 255 elsewhere.",
)
@click.option(
    "--scheme",
    default="canonical",
    show_default=True,
    help="Label scheme of the scribbles (see 's2clouds labels').",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Mask .tif.")
@click.option(
    "--use-bands",
    callback=parse_bands,
    default="B02,B03,B04,B08",
    show_default=True,
    help="Bands the pixel model learns from (add B11, B12, ... when the scene has them).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--save-model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the fitted model (.lgbm) to mask other scenes with --model.",
)
@resolution_option
@bands_option
@level_option
@scale_option
@click.option("--probabilities", is_flag=True, help="Also write <OUT>.proba.tif.")
@click.option("--quicklook", type=click.Path(path_type=Path), default=None, help="RGB PNG.")
@quiet_option
def fit(
    source: str,
    scribbles: Path,
    scheme: str,
    output: Path,
    use_bands: tuple[str, ...],
    rounds: int,
    save_model: Path | None,
    resolution: str | None,
    bands: tuple[str, ...] | None,
    level: str | None,
    scale: str | None,
    probabilities: bool,
    quicklook: Path | None,
    quiet: bool,
) -> None:
    """Fit a pixel model on the SCRIBBLES drawn over SOURCE and write SOURCE's full mask.

    Label a few strokes per class (clear, thick cloud, thin cloud, shadow) in any image
    editor or GIS on the scene's grid, run this, inspect the mask, add strokes where it is
    wrong, run again: the interactive loop of the IRIS annotation tool.
    """
    from s2clouds.inference.options import OutputOptions, PredictOptions, ReadOptions
    from s2clouds.labels import CANONICAL_CLASSES
    from s2clouds.train.annotate import annotate as run_annotation

    options = PredictOptions(
        read=ReadOptions(
            bands=bands,
            level=level.upper() if level else None,
            scale=scale,
            resolution=float(resolution) if resolution else None,
        ),
        output=OutputOptions(probabilities=probabilities, quicklook=quicklook),
        progress=not quiet,
    )
    result = run_annotation(
        source,
        scribbles,
        output,
        scheme=scheme,
        bands=use_bands,
        rounds=rounds,
        model_path=save_model,
        options=options,
    )
    strokes = ", ".join(f"{CANONICAL_CLASSES[c]} {n}" for c, n in result.scribbled.items())
    click.echo(f"fitted on scribbled pixels: {strokes}")
    shares = ", ".join(f"{k} {v:.1%}" for k, v in result.prediction.class_fractions.items())
    click.echo(f"wrote {result.prediction.output} ({shares})")
    if result.model_path:
        click.echo(f"model: {result.model_path} (use it with --model)")


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@annotate.command("check")
@click.argument("project", type=click.Path(path_type=Path))
def check(project: Path) -> None:
    """Validate PROJECT/project.yaml: images, classes, views, users (names the bad field)."""
    from s2clouds.app.project import load_project

    loaded = load_project(project)
    click.echo(
        f"{loaded.root / 'project.yaml'}: ok: {len(loaded.images)} image(s), "
        f"{len(loaded.classes)} classes, {len(loaded.views)} views, users "
        f"{', '.join(loaded.users)}"
    )


@annotate.command("serve")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; any other than localhost requires the token printed at start.",
)
def serve(project: Path, port: int, host: str) -> None:
    """Serve the annotation app for PROJECT (a folder with project.yaml) in the browser.

    Paint strokes per class (keys 1-4, brush size with [ and ]), press P to let the pixel
    model propose the rest of the mask, correct it, save with S.
    """
    try:
        import uvicorn

        from s2clouds.app.server import create_app, new_token
    except ImportError as exc:  # the app extra is missing
        raise click.ClickException(
            f"the annotation app needs the 'app' extra ({exc.name} is missing): "
            f"{install_hint('app')}"
        ) from exc
    from s2clouds.app.project import load_project

    loaded = load_project(project)
    local = host in LOCAL_HOSTS
    token = None if local else new_token()
    allowed = [*LOCAL_HOSTS, "[::1]"] if local else None
    app = create_app(loaded, token=token, allowed_hosts=allowed)
    if host in ("0.0.0.0", "::"):  # every interface: name the machine
        import socket

        host_shown = socket.gethostname()
    else:
        host_shown = host
    shown = f"[{host_shown}]" if ":" in host_shown else host_shown
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"s2clouds annotate: project {loaded.name} ({len(loaded.images)} images)")
    click.echo(f"open {url}")
    if token:
        click.echo("bound beyond this machine: every request needs the token above")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@annotate.command("export")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Folder.")
@click.option(
    "--scheme",
    default=None,
    help="Label scheme written (see 's2clouds labels'); default: the project's scheme.",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    help="Export this user's masks (repeat for several: DIR/<user>/<image>/label.tif); default: "
    "per image, the first user in project.yaml who saved it.",
)
@click.option("--no-bands", is_flag=True, help="Write the labels only, not the image bands.")
def export(
    project: Path, output: Path, scheme: str | None, users: tuple[str, ...], no_bands: bool
) -> None:
    """Write the saved masks of PROJECT as chip folders DIR/<image>/label.tif in SCHEME, on
    each image's grid, with the image's bands beside them (B02.tif, ...): ready for
    's2clouds train --dataset chips DIR -O scheme=SCHEME'."""
    from s2clouds.app.project import load_project
    from s2clouds.app.store import export as export_masks

    loaded = load_project(project)
    scheme = scheme or loaded.scheme
    written = export_masks(loaded, output, scheme, users or None, bands=not no_bands)
    click.echo(f"wrote {len(written)} labelled chip(s) to {output} ({scheme})")
    click.echo(f"train on them: s2clouds train --dataset chips {output} -O scheme={scheme} ...")
