"""Bounds on what reading an input may cost, and on what inputs are: metadata read whole is
capped in size, only regular files are opened (a FIFO or device named like a band would
block the reader forever), and pixels must be near Sentinel-2's sizes."""

from __future__ import annotations

import math
import stat
from pathlib import Path
from typing import IO, Any

from s2clouds.errors import SceneFormatError

#: pixel sizes (m) of inputs and output grids: half Sentinel-2's finest (10 m) to twice its
#: coarsest (60 m). The models were made for 10-60 m; a 0.5 m aerial image or a 1 km
#: product would be masked without meaning
PIXEL_SIZE_RANGE_M = (5.0, 120.0)
#: largest output grid a composite is computed on, in pixels (about 8 Sentinel-2 tiles at
#: 10 m; a 4-band uint16 composite of this size is 8 GB): ``--max-pixels`` raises it
MAX_OUTPUT_PIXELS = 1_000_000_000
#: least share of a composite's default grid (the union of the inputs' footprints) that the
#: inputs must cover: inputs far apart (two continents) make a union of mostly empty windows
MIN_UNION_COVER = 0.01
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


def check_utf8_name(path: str | Path, what: str = "input") -> None:
    """Refuse a path that is not valid UTF-8 (bytes that Python holds as surrogates): GDAL
    takes file names as UTF-8 text and cannot open or write it."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = str(path).encode("utf-8", "backslashreplace").decode("ascii", "replace")
        byte = ord(exc.object[exc.start]) - 0xDC00  # how Python keeps an undecodable byte
        raise SceneFormatError(
            f"the {what} path {shown} is not valid UTF-8 (byte 0x{byte & 0xFF:02x} of another "
            "encoding); GDAL cannot open such names, so rename it (e.g. convmv -f latin1 -t "
            "utf8)"
        ) from exc


def check_regular_file(path: str | Path) -> None:
    """Refuse a local ``path`` that exists but is not a regular file or folder (a FIFO, a
    socket, a device), which a reader would block on, or whose name is not UTF-8 (see
    :func:`check_utf8_name`); GDAL paths (``/vsi...``) pass."""
    check_utf8_name(path)
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


def check_pixel_size(grid: Any, where: str | Path) -> None:
    """Refuse a grid (:class:`~s2clouds.io.grid.Grid`) whose pixels are outside
    :data:`PIXEL_SIZE_RANGE_M` (metres, degrees converted at the grid's latitude), naming
    ``where`` (the file) and the fix."""
    metres = float(grid.metres_per_pixel)
    low, high = PIXEL_SIZE_RANGE_M
    if not low <= metres <= high:  # also refuses NaN
        raise SceneFormatError(
            f"{where} has pixels of {metres:.3g} m; s2clouds masks Sentinel-2 images with "
            f"pixels of {low:g} to {high:g} m (10, 20 or 60 m natively). Resample it to 10 m "
            "first (e.g. gdalwarp -tr 10 10 -r average), or check its georeference"
        )


def check_grid_size(height: float, width: float, limit: int, what: str) -> None:
    """Refuse a grid of ``height`` x ``width`` pixels (estimated before it is made: floats,
    maybe infinite) above ``limit`` pixels, or not finite, naming ``what`` made it so and
    how to raise the limit."""
    if not (math.isfinite(height) and math.isfinite(width)):
        raise SceneFormatError(f"{what} gives a grid of infinite size; give finite bounds")
    pixels = height * width
    if pixels > limit:
        raise SceneFormatError(
            f"{what} gives a grid of {width:.4g} x {height:.4g} = {pixels:.3g} pixels, above "
            f"the limit of {limit:.3g}; give smaller bounds= or a coarser grid=, leave out "
            "inputs far from the others, or raise the limit with max_pixels="
        )
