"""Library parameters -> command-line flags, for library errors and warnings shown here.

The library's messages name its parameters (``quicklook=``, ``bands=B02,B03``,
``overwrite=True``) and errors carry the parameter at fault (``S2CloudsError.param``), as
``click.BadParameter(param_hint=...)`` does; this table says which flag sets each one, so
that the command line's message names the flag the user typed.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import click

#: library parameter as messages name it (``name=``, or ``name=VALUE`` for boolean flags)
#: -> the flag that sets it; one table for every command
PARAM_FLAGS: dict[str, str] = {
    "bands": "--bands",
    "block": "--block",
    "bounds": "--bounds",
    "distance_cap": "--distance-cap",
    "drop_incomplete=True": "--drop-incomplete",
    "grid": "--grid",
    "kind": "--kind",
    "level": "--level",
    "licence": "--licence",
    "like": "--like",
    "max_pixels": "--max-pixels",
    "method": "--method",
    "min_quality": "--min-quality",
    "model": "--model",
    "model_path": "--save-model",
    "opset": "--opset",
    "out_path": "-o",
    "output": "-o",
    "overwrite=True": "--overwrite",
    "probabilities": "--probabilities",
    "protocol": "--protocol",
    "quicklook": "--quicklook",
    "resume=False": "--no-resume",
    "scale": "--scale",
    "scheduler": "--scheduler",
    "scheme": "--scheme",
    "series=True": "--series",
    "sign": "--sign",
    "workers": "--workers",
}

#: a parameter named in a message: ``name=`` (not part of a longer name, nor a ``-O
#: KEY=VALUE`` reader option), the longest names first
_NAMED = re.compile(
    r"(?<!-O )(?<![\w.-])("
    + "|".join(
        re.escape(k if "=" in k else f"{k}=") for k in sorted(PARAM_FLAGS, key=len, reverse=True)
    )
    + ")"
)
#: what may follow a bare ``name=`` when it names the option rather than give it a value
_NO_VALUE = set(" \t),;./")
#: what starts a Python value (``bands=['B02']``, ``level='L1C'``): an example of the
#: library's own call, left as it is
_PYTHON_VALUE = set("'\"[({")


def flag_for(param: str | None) -> str | None:
    """The flag that sets library parameter ``param`` (None when the command line has none)."""
    return PARAM_FLAGS.get(param) if param else None


def with_flags(message: str, param: str | None = None) -> str:
    """``message`` with every parameter it names replaced by its flag (``quicklook=`` ->
    ``--quicklook``, ``scale=dn`` -> ``--scale dn``, ``overwrite=True`` -> ``--overwrite``);
    when ``param`` has a flag that the message does not name, the flag leads it
    (``--grid: ...``)."""

    def flag(match: re.Match[str]) -> str:
        named = match[1]
        if named in PARAM_FLAGS:  # a boolean flag: ``overwrite=True``
            return PARAM_FLAGS[named]
        end = match.end()
        following = message[end] if end < len(message) else " "
        if following in _PYTHON_VALUE:
            return named
        return PARAM_FLAGS[named[:-1]] + ("" if following in _NO_VALUE else " ")

    text = _NAMED.sub(flag, message)
    leading = flag_for(param)
    if leading is not None and not re.search(rf"(?<![\w-]){re.escape(leading)}(?![\w-])", text):
        text = f"{leading}: {text}"
    return text


class _EchoHandler(logging.Handler):
    """Log records as the command line's plain lines (flags for parameters): INFO on
    stdout, warnings and worse as ``warning: ...`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = with_flags(record.getMessage())
            if record.levelno >= logging.WARNING:
                click.secho(f"warning: {message}", fg="yellow", err=True)
            else:
                click.echo(message)
        except Exception:  # a broken pipe or a bad format: logging's own report
            self.handleError(record)


@contextlib.contextmanager
def library_reports(quiet: bool) -> Iterator[None]:
    """While a command runs, show what the library reports (the ``s2clouds`` loggers' INFO
    records) as lines of its output; ``quiet``: warnings only. The library alone is silent."""
    logger = logging.getLogger("s2clouds")
    handler = _EchoHandler(logging.INFO)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
