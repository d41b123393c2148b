"""Bounds on what reading an input may cost: metadata read whole is capped in size, and
only regular files are opened (a FIFO or device named like a band would block the reader
forever)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import IO

from s2clouds.errors import SceneFormatError

#: largest metadata file read whole (XML, JSON): real Sentinel-2 metadata is at most a few MB
MAX_METADATA_BYTES = 16 << 20


def read_bounded(handle: IO[bytes], what: str) -> bytes:
    """All of ``handle``, refusing more than :data:`MAX_METADATA_BYTES` (a decompression
    bomb in a zip, a runaway file) with :class:`SceneFormatError` naming ``what``."""
    limit = MAX_METADATA_BYTES
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise SceneFormatError(
            f"{what} is larger than {limit >> 20} MB, far more than Sentinel-2 metadata; the "
            "file is damaged or not what it claims to be"
        )
    return data


def check_regular_file(path: str | Path) -> None:
    """Refuse a local ``path`` that exists but is not a regular file or folder (a FIFO, a
    socket, a device), which a reader would block on; GDAL paths (``/vsi...``) pass."""
    text = str(path)
    if text.startswith("/vsi"):
        return
    try:
        mode = Path(text).stat().st_mode
    except OSError:
        return  # missing: the reader reports it
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise SceneFormatError(
            f"{path} is not a regular file (a FIFO, socket or device); give the file itself"
        )
