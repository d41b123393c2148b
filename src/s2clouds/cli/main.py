"""Entry point ``s2clouds``: subcommands are imported only when they are run."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from typing import Any

import click

from s2clouds import __version__
from s2clouds.cli.params import with_flags
from s2clouds.errors import S2CloudsError, one_line
from s2clouds.registry import Registry, load_attribute

#: environment variable: import LightGBM without scikit-learn (see s2clouds.models.pixel)
LIGHTGBM_WITHOUT_SKLEARN = "S2CLOUDS_LIGHTGBM_WITHOUT_SKLEARN"
#: MB of decoded raster tiles GDAL keeps (a row of a tile's windows with their halos)
GDAL_CACHE_MB = "256"

#: subcommand name -> (module, attribute, one-line help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "predict": ("s2clouds.cli.predict", "predict", "Predict cloud and shadow masks for scenes."),
    "search": (
        "s2clouds.cli.search",
        "search",
        "Find scenes in a STAC API; write one item JSON each.",
    ),
    "composite": (
        "s2clouds.cli.composite",
        "composite",
        "Merge many acquisitions into one cloud-free composite.",
    ),
    "labels": ("s2clouds.cli.labels", "labels", "List label schemes and translate masks."),
    "datasets": ("s2clouds.cli.datasets", "datasets", "Inspect benchmark datasets on disk."),
    "benchmark": ("s2clouds.cli.benchmark", "benchmark", "Score cloud maskers on a dataset."),
    "landcover": (
        "s2clouds.cli.landcover",
        "landcover",
        "SEN12MS land cover: train baselines, score them (OA, AA, kappa).",
    ),
    "models": ("s2clouds.cli.models", "models", "List the registered models and what they need."),
    "train": ("s2clouds.cli.train", "train", "Train a model on a dataset (needs the train extra)."),
    "export": (
        "s2clouds.cli.export",
        "export",
        "Export a trained checkpoint to ONNX with its spec.",
    ),
    "annotate": (
        "s2clouds.cli.annotate",
        "annotate",
        "Label images: the assisted annotation app, and scribbles to masks.",
    ),
}


#: the subcommands by name: (module, attribute, one-line help), imported when run
SUBCOMMANDS: Registry[tuple[str, str, str]] = Registry("command")
for _name, _command in _COMMANDS.items():
    SUBCOMMANDS.register(_name, _command)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use, keeping ``--help`` fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in SUBCOMMANDS if self._available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS.names():  # exact names only, as click's own groups
            return None
        module_name, attr, _ = SUBCOMMANDS[cmd_name]
        command: click.Command = load_attribute(f"{module_name}:{attr}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(SUBCOMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="s2clouds")
def cli() -> None:
    """s2clouds: cloud and cloud-shadow masks for Sentinel-2."""


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; library errors become one clear line on stderr and exit code 2."""
    # no command uses LightGBM's scikit-learn classes (inherited by local Dask workers)
    os.environ.setdefault(LIGHTGBM_WITHOUT_SKLEARN, "1")
    # GDAL's cache of decoded tiles (default 5 % of RAM): enough for a row of windows' halos
    os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHE_MB)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return cli.main(args=argv, prog_name="s2clouds", standalone_mode=False)
    except S2CloudsError as exc:  # its message names parameters: show the flags instead
        message = with_flags(one_line(str(exc)), getattr(exc, "param", None))
        click.secho(f"error: {message}", fg="red", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad usage: one line too, with where to get help
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        click.secho(f"error: {one_line(exc.format_message())}{hint}", fg="red", err=True)
        sys.exit(exc.exit_code)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Warnings as one ``warning: ...`` line on stderr (no file name, line or source)."""
    click.secho(f"warning: {with_flags(one_line(str(message)))}", fg="yellow", err=True)


if __name__ == "__main__":
    sys.exit(main())
