"""Reader options ``-O KEY=VALUE``, one mechanism for ``datasets``, ``benchmark`` and ``train``.

Each ``-O`` becomes a keyword argument of the dataset reader
(``s2clouds.datasets.registry.open_dataset``): ``-O split=train,val -O level=L2A`` ->
``{"split": ["train", "val"], "level": "L2A"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = "e.g. -O split=train,val -O level=L2A -O label=none -O tags=forest,!thin"


def reader_options(help_text: str = f"Reader option, repeatable: {EXAMPLES}.") -> Callable[[F], F]:
    """The repeatable ``-O/--option KEY=VALUE`` click option (parameter name ``options``)."""
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
