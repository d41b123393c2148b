"""Options shared by several subcommands."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from s2clouds.bands import canonical_band_names

F = TypeVar("F", bound=Callable[..., Any])


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A :class:`click.Choice` whose names come from ``names()`` when first needed (help,
    completion, a check of the value), so that defining a command imports no registry: a
    ``predict`` never loads the dataset readers for the choices of ``--kind``."""

    def __init__(self, names: Callable[[], Sequence[str]], *, case_sensitive: bool = True):
        self._names = names
        self._loaded: tuple[str, ...] | None = None
        super().__init__((), case_sensitive=case_sensitive)

    @property
    def choices(self) -> tuple[str, ...]:
        if self._loaded is None:
            self._loaded = tuple(self._names())
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # click's __init__ sets them: ignored
        pass


def dataset_kinds() -> list[str]:
    """The registered dataset kinds (built-in readers and plugins)."""
    from s2clouds.datasets.registry import DATASETS

    return list(DATASETS)


def parse_bands(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """``B02,B03,B04,B08`` (any spelling, comma or space separated) -> canonical names."""
    if not value:
        return None
    names = [v for v in value.replace(",", " ").split() if v]
    return canonical_band_names(names)


class FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` that also refuses NaN and infinities (which compare false
    with every bound, so that ``FloatRange`` lets NaN through)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


bands_option = click.option(
    "--bands",
    callback=parse_bands,
    default=None,
    help="Band names: for a multi-band GeoTIFF, the names of its bands in file order; "
    "for SAFE products and band folders, the bands to use. E.g. B02,B03,B04,B08.",
)
resolution_option = click.option(
    "--resolution",
    type=click.Choice(["10", "20", "60"]),
    default=None,
    help="Output grid resolution in metres (default: the finest input band).",
)
scale_option = click.option(
    "--scale",
    type=click.Choice(["dn", "reflectance"]),
    default=None,
    help="How pixel values are stored: 'dn' (integers / 10000, with the baseline offset read "
    "from SAFE metadata) or 'reflectance' (0-1). Default: guessed from the data type.",
)
level_option = click.option(
    "--level",
    type=click.Choice(["L1C", "L2A"], case_sensitive=False),
    default=None,
    help="Processing level of the input (checked against SAFE metadata).",
)
quiet_option = click.option(
    "--quiet", is_flag=True, help="No progress bar or summary (errors are still shown)."
)
kind_option = click.option(
    "--kind",
    type=LazyChoice(dataset_kinds, case_sensitive=False),
    default=None,
    help="Dataset reader; detected from the folder layout when omitted.",
)
_workers_option = click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Local Dask workers. Default: one per CPU core when there is more than one window; "
    "0: run in this process.",
)
_threads_option = click.option(
    "--threads", is_flag=True, help="Local workers are threads, not processes."
)
_scheduler_option = click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Use a running Dask scheduler (default: $S2CLOUDS_SCHEDULER, else a local cluster). "
    "Workers must see the input files at the same paths.",
)


def cluster_options(command: F) -> F:
    """``--workers``, ``--threads`` and ``--scheduler`` (parameters ``workers``, ``threads``,
    ``scheduler``): where the windows of ``predict`` and ``composite`` run."""
    return _workers_option(_threads_option(_scheduler_option(command)))


#: examples shown in the help of -O
READER_EXAMPLES = "e.g. -O split=train,val -O level=L2A -O label=none -O tags=forest,!thin"


def reader_options(
    help_text: str = f"Dataset reader option, repeatable: {READER_EXAMPLES}.",
) -> Callable[[F], F]:
    """The repeatable ``-O/--option KEY=VALUE`` click option (parameter name ``options``),
    one mechanism for ``datasets``, ``benchmark``, ``train`` and ``landcover``: each becomes
    a keyword argument of the dataset reader (:func:`parse_options`)."""
    return click.option(
        "-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help=help_text
    )


def _parse_value(text: str) -> Any:
    """``none`` -> None, ``true``/``false`` -> bool, integers, ``a,b`` -> list, else text."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        return int(text)
    except ValueError:
        return text


def parse_options(options: tuple[str, ...]) -> dict[str, Any]:
    """``("split=train,val", "crop=true")`` -> ``{"split": ["train", "val"], "crop": True}``."""
    parsed: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="-O/--option")
        parsed[key.strip().replace("-", "_")] = _parse_value(value)
    return parsed
