"""Outputs never overwrite inputs: the one check every command runs before it writes.

A command knows what it will write (mask, probabilities, quicklook, run log, model) and what
it reads (the input, its band and metadata files, scribbles, lists, checkpoints). An output
is refused when it is the same file as any input, or as another output of the same run:
paths are compared after resolving symlinks, and existing files by device and inode, so a
hard link to an input is refused too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from s2clouds.errors import OutputError

#: GDAL prefixes whose path continues with a local archive file (``/vsizip//data/x.zip/a.jp2``)
ARCHIVE_PREFIXES = ("/vsizip/", "/vsitar/", "/vsigzip/", "/vsi7z/")


def local_file(path: str | Path) -> Path | None:
    """The local file behind ``path`` as GDAL reads it: the archive of a ``/vsizip/`` path,
    ``path`` itself for a plain path, None for remote (``/vsicurl/``, URLs) or unknown ones."""
    text = str(path)
    for prefix in ARCHIVE_PREFIXES:
        if text.startswith(prefix):
            inner = PurePosixPath(text[len(prefix) :])
            for candidate in (inner, *inner.parents):
                if Path(candidate).is_file():
                    return Path(candidate)
            return None
    if text.startswith("/vsi") or "://" in text:
        return None
    return Path(text)


def file_identity(path: Path) -> tuple[object, ...]:
    """What makes two paths one file: (device, inode) when it exists (symlinks followed, so
    symlinks and hard links to one file agree), else its absolute path with links resolved."""
    try:
        status = path.stat()
    except (OSError, ValueError):
        return ("path", os.path.realpath(path))
    return ("inode", status.st_dev, status.st_ino)


def check_outputs(
    outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None]
) -> None:
    """Refuse ``outputs`` (how errors name them, with their option -> path; None = not
    written) that are the same file as one of ``inputs`` or as another output.

    Raises :class:`~s2clouds.errors.OutputError` naming the output, both paths and the fix.
    """
    read: dict[tuple[object, ...], Path] = {}
    for item in inputs:
        path = local_file(item) if item is not None else None
        if path is not None:
            read.setdefault(file_identity(path), path)
    written: dict[tuple[object, ...], str] = {}
    for label, value in outputs.items():
        if value is None:
            continue
        identity = file_identity(Path(value))
        if identity in read:
            raise OutputError(
                f"{label} {value} is the input file {read[identity]}; writing it would destroy "
                "the input, so choose another path"
            )
        if identity in written:
            raise OutputError(
                f"{label} {value} is also {written[identity]}; give each output its own path"
            )
        written[identity] = label
