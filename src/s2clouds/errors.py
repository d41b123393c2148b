"""One root error class; every subclass tells the user what to do next."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class S2CloudsError(Exception):
    """Root of every error s2clouds raises on purpose.

    Messages name the library's parameters (``quicklook=``, ``bands=B02,B03``), never the
    command line's flags; ``param`` is the name of the parameter whose value was at fault,
    when there is one. The command line maps both to its flags (``s2clouds.cli.params``).
    """

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


class BandError(S2CloudsError, ValueError):
    """Bands are missing, unknown, duplicated or in the wrong count."""


class RadiometryError(S2CloudsError, ValueError):
    """Pixel values do not look like the declared scaling (DN vs reflectance)."""


class LabelSchemeError(S2CloudsError, ValueError):
    """Unknown label scheme, or values that the scheme does not define."""


class SceneFormatError(S2CloudsError):
    """An input path is not a format s2clouds can read, or it is damaged."""


class RemoteReadError(SceneFormatError):
    """A remote band file (http/https/s3 href) cannot be read: unreachable after the retries,
    refused (an expired or missing signature), or the signing hook cannot be loaded."""


class SearchError(S2CloudsError):
    """A STAC search cannot run: the API is unreachable or refuses the query, or the bbox,
    datetime or collection given are not valid."""


class CRSMismatchError(S2CloudsError, ValueError):
    """Inputs that must share a grid (CRS, transform, extent) do not."""


class ShapeMismatchError(S2CloudsError, ValueError):
    """Arrays that must have one shape (prediction and truth, a mask and its image) do not."""


class OutputError(S2CloudsError):
    """The output cannot be written (folder missing, not writable, exists)."""


class ModelError(S2CloudsError):
    """A model is unknown, or its inputs do not match what its weights expect."""


class DatasetError(S2CloudsError):
    """A dataset folder is missing files, or a file is damaged."""


class BenchmarkError(S2CloudsError, ValueError):
    """Benchmark inputs or results are inconsistent (unknown protocol, bad CSV, mismatch)."""


class OptionError(S2CloudsError, ValueError):
    """An option's value is malformed (not ``CRS,RESOLUTION``, an unknown method), not a
    finite number, or outside its range; ``param`` names the option."""


class UnknownNameError(OptionError, LookupError):
    """A name is in none of a registry's entries (model, dataset kind, protocol, scorer,
    merge method, architecture, input format, signing hook); the message lists the known
    names (see :class:`s2clouds.registry.Registry`)."""


class RegistryError(S2CloudsError):
    """A registry refuses an entry: the name is taken (give ``replace=True``) or empty."""


class PluginError(S2CloudsError):
    """A registered entry or an entry-point plugin cannot be loaded (its module does not
    import, or it is not what the registry holds)."""


class ClusterError(S2CloudsError):
    """Dask is missing, or the scheduler cannot be reached."""


def detached(exc: S2CloudsError) -> S2CloudsError:
    """A copy of ``exc`` (same type, same message) without cause, context or traceback.

    Errors raised on a Dask worker travel back pickled with their chain; a cause from GDAL
    or another library may not unpickle on the client, and Dask then sends a bare
    ``Exception`` instead. Raise the copy outside the ``except`` block that caught ``exc``.
    """
    try:
        copy = type(exc)(*exc.args)
    except TypeError:  # a subclass with another signature: keep the message
        copy = S2CloudsError(str(exc))
    copy.param = getattr(exc, "param", None)
    return copy


def detaching(task: Callable[_P, _R]) -> Callable[_P, _R]:
    """``task`` with the library errors it raises replaced by their :func:`detached` copies:
    for the units of work of the engines, whose errors cross a Dask cluster with their type
    and message. The wrapper keeps the task's name, so it pickles by reference."""

    @functools.wraps(task)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return task(*args, **kwargs)
        except S2CloudsError as exc:
            error = detached(exc)  # raised outside the except block: no context travels
        raise error

    return run


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines included) made one space."""
    return " ".join(message.split())
