"""Input paths of a run from command-line arguments, globs and list files."""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

from s2clouds.errors import SceneFormatError
from s2clouds.inference.outputs import is_own_output
from s2clouds.io.limits import check_regular_file

GLOB_CHARACTERS = re.compile(r"[*?\[]")


def expand_inputs(arguments: Sequence[str], from_file: Path | None = None) -> list[str]:
    """Input paths from command-line ``arguments`` and an optional list file, in order.

    An argument ``@list.txt`` (or ``from_file``) is a text file of inputs, one per line (blank
    lines and ``#`` comments ignored; relative paths are relative to the list file's folder).
    Arguments and lines with ``*``, ``?`` or ``[`` are globs (``**`` recursive), sorted; files
    that s2clouds wrote itself (``*_cloudmask.tif``) are left out of glob matches. A glob that
    matches nothing is kept as it is, so that it is reported as a failed input. Duplicates are
    dropped.
    """
    listed: list[str] = []
    for argument in arguments:
        if argument.startswith("@"):
            listed.extend(read_input_list(Path(argument[1:])))
        else:
            listed.extend(_expand_glob(argument))
    if from_file is not None:
        listed.extend(read_input_list(from_file))
    return list(dict.fromkeys(listed))


def read_input_list(path: Path) -> list[str]:
    """Inputs named in a text file (see :func:`expand_inputs`)."""
    check_regular_file(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFormatError(
            f"cannot read the input list {path} ({exc}); give a UTF-8 text file of paths"
        ) from exc
    base = path.parent
    entries = [line.strip() for line in lines]
    paths = [e if Path(e).is_absolute() else str(base / e) for e in entries if e and e[0] != "#"]
    return [p for entry in paths for p in _expand_glob(entry)]


def _expand_glob(pattern: str) -> list[str]:
    if not GLOB_CHARACTERS.search(pattern):
        return [pattern]
    matches = [p for p in sorted(glob.glob(pattern, recursive=True)) if not is_own_output(p)]
    return matches or [pattern]
