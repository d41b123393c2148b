"""Write masks as Cloud-Optimized GeoTIFFs, atomically.

Data is first written window by window into a tiled GeoTIFF next to the destination, then
copied to a COG (internal tiles, overviews) in a second temporary file, which is renamed onto
the destination only when complete. A crash or Ctrl-C leaves no partial file at the
destination.

Temporary files are hidden and named after their owner:
``.<name>.s2clouds-<host>-<pid>.<8 random characters>`` followed by ``.stage.tif`` or
``.part`` (GDAL may add ``.ovr.tmp``, ``.ovr`` or ``.aux.xml`` to those). A process killed
with SIGKILL cannot remove its own, so every writer first removes those beside its
destination whose owner was a process of this host that is no longer running. Only regular
files whose whole name has that form are removed: files of live processes and of other hosts
(workers on a shared file system), folders, links and any other name are never touched.

Destinations that exist and are not regular files (``/dev/null``, a FIFO, a socket) are
refused: renaming onto them would replace the device or pipe with a file. A write that
fails (disk full, a name too long for the file system) is one :class:`OutputError`.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.io.grid import Grid, Window
from s2clouds.io.profiles import COG_CONTINUOUS, COG_MASK, TILED_GTIFF
from s2clouds.labels.schemes import CANONICAL_CLASSES, CANONICAL_COLOURS, NODATA

#: longest file name most file systems take (ext4, XFS, APFS, NTFS: 255 bytes)
MAX_NAME_BYTES = 255
#: what a temporary name adds to the target's: ``.`` + ``.s2clouds-<host>-<pid>.`` +
#: 8 random characters + the longest suffix GDAL makes (``.stage.tif.aux.xml``)
TEMPORARY_NAME_EXTRA = 60


def check_writable(path: Path, *, overwrite: bool = True) -> None:
    """Refuse destinations whose folder is missing or not writable, that exist (unless
    ``overwrite``), that exist and are not regular files (a device such as ``/dev/null``,
    a FIFO, a folder), or whose name is too long for the file system with our temporary
    suffixes."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = str(path).encode("utf-8", "backslashreplace").decode("ascii")
        raise OutputError(
            f"the output path {shown} is not valid UTF-8; GDAL cannot write such names, so "
            "choose a UTF-8 name"
        ) from exc
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(
            f"output folder {folder} is not writable; choose another path for output="
        )
    check_regular_target(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass overwrite=True to replace it")
    name_bytes = len(os.fsencode(path.name))
    if name_bytes + len(os.fsencode(HOST)) + TEMPORARY_NAME_EXTRA > MAX_NAME_BYTES:
        raise OutputError(
            f"the file name of {path} is {name_bytes} bytes long, too long for the file "
            f"system with the temporary suffixes (at most {MAX_NAME_BYTES} bytes in all); "
            "choose a shorter name"
        )


def check_regular_target(path: Path) -> None:
    """Refuse a destination that exists and is not a regular file (symlinks followed):
    replacing a device node (``/dev/null``), a FIFO, a socket or a folder would destroy it."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return  # missing (or a dangling link): a new file is made
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise OutputError(
            f"{path} exists and is {kind}, not a regular file; writing it would replace it, "
            "so give the path of a file"
        )


#: free bytes below which a failed write is put down to a full disk
FULL_DISK_BYTES = 16 << 20


def write_failure(path: Path, exc: BaseException) -> OutputError:
    """One line for a write of ``path`` that failed: the disk is full (said so when the
    error or the free space shows it), the name too long, permissions; names what to do."""
    reason = " ".join(str(exc.__cause__ or exc).split()).rstrip(".") or type(exc).__name__
    cause = exc.errno if isinstance(exc, OSError) else None  # GDAL's errors: its own codes
    if cause is None and "No space left" in reason:
        cause = errno.ENOSPC
    folder = path.parent if str(path.parent) else Path(".")
    with contextlib.suppress(OSError):
        if cause is None and shutil.disk_usage(folder).free < FULL_DISK_BYTES:
            cause = errno.ENOSPC
            reason = f"{reason}; the disk is full ({shutil.disk_usage(folder).free} bytes free)"
    hint = {
        errno.ENOSPC: "free space on that disk or choose another path for output=",
        errno.EDQUOT: "free space within your quota or choose another path for output=",
        errno.EFBIG: "the file is larger than this file system or process may write",
        errno.ENAMETOOLONG: "choose a shorter file name",
    }.get(cause or -1, "check the output folder and try again")
    return OutputError(f"cannot write {path} ({reason}); {hint}")


#: this host's name as temporary file names carry it (no dots, so names parse back)
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


#: the marker of our temporary files, after the target's name
TEMPORARY_MARKER = "s2clouds"
#: suffixes of our temporary files, and what GDAL adds to them while it writes
TEMPORARY_SUFFIXES = (".stage.tif", ".part")
GDAL_SIDE_SUFFIXES = (".ovr.tmp", ".ovr", ".aux.xml")


def temporary_prefix(path: Path) -> str:
    """``.<name>.s2clouds-<host>-<pid>.``: the start of this process's temporary files for
    ``path``."""
    return f".{path.name}.{TEMPORARY_MARKER}-{HOST}-{os.getpid()}."


def make_temporary(path: Path, suffix: str) -> Path:
    """A new, empty hidden temporary file beside ``path`` owned by this process (see the
    module docstring); stale ones of killed processes are removed first. A file system that
    refuses it (full, name too long) is an :class:`OutputError`."""
    remove_stale_temporaries(path)
    try:
        fd, name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise write_failure(path, exc) from exc
    os.close(fd)
    return Path(name)


def temporary_pattern(path: Path) -> re.Pattern[str]:
    """The whole name of a temporary file of ``path`` (any host and pid), as
    :func:`make_temporary` and GDAL make them."""
    suffixes = "|".join(re.escape(s) for s in TEMPORARY_SUFFIXES)
    side = "|".join(re.escape(s) for s in GDAL_SIDE_SUFFIXES)
    return re.compile(
        rf"\.{re.escape(path.name)}\.{TEMPORARY_MARKER}-(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)"
        rf"\.[a-z0-9_]{{8}}(?:{suffixes})(?:{side})?"
    )


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files beside ``path`` left by processes of this host that are no
    longer running; returns them. Only regular files (not links, folders or pipes) whose
    whole name is one of ours (:func:`temporary_pattern`) are removed; live processes' files
    and other hosts' are kept."""
    owner = temporary_pattern(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    for candidate in folder.glob(f".{glob.escape(path.name)}.{TEMPORARY_MARKER}-*"):
        found = owner.fullmatch(candidate.name)
        if found is None or found["host"] != HOST or process_alive(int(found["pid"])):
            continue
        try:
            if not stat.S_ISREG(candidate.lstat().st_mode):
                continue
            candidate.unlink()
        except FileNotFoundError:  # another run removed it first
            continue
        except OSError:  # not ours to remove after all (permissions): leave it
            continue
        removed.append(candidate)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    check_regular_target(path)
    tmp_path = make_temporary(path, ".part")
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise write_failure(path, exc) from exc
            raise
        os.chmod(tmp_path, 0o666 & ~_umask())
        check_regular_target(path)  # made a device or FIFO meanwhile: still never replaced
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


class RasterWriter:
    """Write a raster window by window, then finish it as a COG at ``path`` atomically.

    Use as a context manager::

        with RasterWriter(path, grid, count=1, dtype="uint8", nodata=255) as w:
            w.write(window, array)          # (count, h, w) or (h, w)

    ``colormap`` (value -> RGBA), ``band_names`` and ``tags`` are stored in the file.
    """

    def __init__(
        self,
        path: str | Path,
        grid: Grid,
        *,
        count: int = 1,
        dtype: str = "uint8",
        nodata: float | None = NODATA,
        colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
        band_names: tuple[str, ...] = (),
        tags: Mapping[str, str] | None = None,
        band_tags: Mapping[str, str] | None = None,
        cog_profile: Mapping[str, Any] = COG_MASK,
        overwrite: bool = True,
    ) -> None:
        self.path = Path(path)
        check_writable(self.path, overwrite=overwrite)
        self.grid, self.count, self.dtype, self.nodata = grid, count, dtype, nodata
        self.colormap, self.band_names = colormap, band_names
        self.tags, self.band_tags, self.cog_profile = (
            dict(tags or {}),
            dict(band_tags or {}),
            cog_profile,
        )
        self._stage: Path | None = None
        self._dataset: Any = None

    def __enter__(self) -> RasterWriter:
        import rasterio

        self._stage = make_temporary(self.path, ".stage.tif")
        profile = {
            **TILED_GTIFF,
            "height": self.grid.height,
            "width": self.grid.width,
            "count": self.count,
            "dtype": self.dtype,
            "crs": self.grid.crs,
            "transform": self.grid.transform,
            "nodata": self.nodata,
        }
        if self.grid.height < 512 or self.grid.width < 512:
            profile.update(tiled=False)
            profile.pop("blockxsize")
            profile.pop("blockysize")
        with self._failing_as_output_error():
            try:
                self._dataset = rasterio.open(self._stage, "w", **profile)
                if self.colormap is not None:  # before any pixel is written (GDAL requires it)
                    colours = {int(k): tuple(v) for k, v in self.colormap.items()}
                    self._dataset.write_colormap(1, colours)
            except BaseException:
                self._discard()
                raise
        return self

    @contextlib.contextmanager
    def _failing_as_output_error(self) -> Iterator[None]:
        """GDAL's and the OS's write errors (disk full, quota) as one :class:`OutputError`
        naming the destination."""
        from rasterio.errors import RasterioError

        try:
            from rasterio._err import CPLE_BaseError
        except ImportError:  # pragma: no cover - rasterio moved it
            CPLE_BaseError = RasterioError  # noqa: N806
        try:
            yield
        except (RasterioError, CPLE_BaseError, OSError) as exc:
            raise write_failure(self.path, exc) from exc

    def _discard(self) -> None:
        """Close the staging dataset if open and remove the staging file."""
        with contextlib.suppress(Exception):
            if self._dataset is not None and not self._dataset.closed:
                self._dataset.close()
        if self._stage is not None and self._stage.exists():
            self._stage.unlink()

    def write(self, window: Window, data: np.ndarray) -> None:
        """Write ``data`` ``(count, h, w)`` or ``(h, w)`` into ``window`` of the grid."""
        arr = data[None] if data.ndim == 2 else data
        with self._failing_as_output_error():
            self._dataset.write(
                arr.astype(self.dtype, copy=False),
                window=window.to_rasterio(),
            )

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                with self._failing_as_output_error():
                    self._finish_stage()
                    self._dataset.close()
                    self._copy_to_cog()
        finally:
            self._discard()

    def _finish_stage(self) -> None:
        ds = self._dataset
        for i, name in enumerate(self.band_names, start=1):
            ds.set_band_description(i, name)
        ds.update_tags(**self.tags)
        if self.band_tags:
            ds.update_tags(1, **self.band_tags)

    def _copy_to_cog(self) -> None:
        from rasterio.shutil import copy as rio_copy

        assert self._stage is not None
        with atomic_path(self.path) as tmp:
            rio_copy(self._stage, tmp, **self.cog_profile)


def mask_writer(
    path: str | Path, grid: Grid, *, tags: Mapping[str, str] | None = None, overwrite: bool = True
) -> RasterWriter:
    """A :class:`RasterWriter` for canonical masks: uint8, no-data 255, colours, class names."""
    class_tags = {f"CLASS_{v}": name for v, name in CANONICAL_CLASSES.items()} | {
        f"CLASS_{NODATA}": "no data"
    }
    return RasterWriter(
        path,
        grid,
        count=1,
        dtype="uint8",
        nodata=NODATA,
        colormap=CANONICAL_COLOURS,
        band_names=("cloud_mask",),
        tags={"LABEL_SCHEME": "s2clouds canonical", **(tags or {})},
        band_tags=class_tags,
        overwrite=overwrite,
    )


def probability_writer(
    path: str | Path, grid: Grid, *, tags: Mapping[str, str] | None = None, overwrite: bool = True
) -> RasterWriter:
    """A :class:`RasterWriter` for per-class probabilities: 4 bands uint8 percent, no-data 255."""
    names = tuple(f"p_{name.replace(' ', '_')}" for name in CANONICAL_CLASSES.values())
    return RasterWriter(
        path,
        grid,
        count=len(names),
        dtype="uint8",
        nodata=NODATA,
        band_names=names,
        tags={"UNITS": "percent", **(tags or {})},
        cog_profile=COG_CONTINUOUS,
        overwrite=overwrite,
    )


def write_mask(path: str | Path, mask: np.ndarray, grid: Grid, **kwargs: Any) -> Path:
    """Write a whole canonical mask ``(H, W)`` uint8 as a COG (see :func:`mask_writer`)."""
    if mask.shape != grid.shape:
        raise OutputError(f"mask shape {mask.shape} does not match the grid {grid.shape}")
    with mask_writer(path, grid, **kwargs) as writer:
        writer.write(grid.full_window(), mask)
    return Path(path)
