"""Write masks as Cloud-Optimized GeoTIFFs, atomically.

Data is first written window by window into a tiled GeoTIFF next to the destination, then
copied to a COG (internal tiles, overviews) in a second temporary file, which is renamed onto
the destination only when complete. A crash or Ctrl-C leaves no partial file at the
destination.

Temporary files are hidden and named after their owner: ``.<name>.<host>-<pid>.<random>``
followed by ``.stage.tif``, ``.part`` (or GDAL's ``.part.ovr.tmp``). A process killed with
SIGKILL cannot remove its own, so every writer first removes those beside its destination
whose owner was a process of this host that is no longer running; files of live processes
and of other hosts (workers on a shared file system) are never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.errors import OutputError
from s2clouds.io.grid import Grid, Window
from s2clouds.io.profiles import COG_CONTINUOUS, COG_MASK, TILED_GTIFF
from s2clouds.labels.schemes import CANONICAL_CLASSES, CANONICAL_COLOURS, NODATA


def check_writable(path: Path, *, overwrite: bool = True) -> None:
    """Refuse destinations whose folder is missing or not writable, or that exist."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {folder} is not writable; choose another -o path")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")


#: this host's name as temporary file names carry it (no dots, so names parse back)
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def temporary_prefix(path: Path) -> str:
    """``.<name>.<host>-<pid>.``: the start of this process's temporary files for ``path``."""
    return f".{path.name}.{HOST}-{os.getpid()}."


def make_temporary(path: Path, suffix: str) -> Path:
    """A new, empty hidden temporary file beside ``path`` owned by this process (see the
    module docstring); stale ones of killed processes are removed first."""
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files beside ``path`` left by processes of this host that are no
    longer running; returns them. Live processes' files and other hosts' are kept."""
    owner = re.compile(rf"\.{re.escape(path.name)}\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.")
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    for candidate in folder.glob(f".{glob.escape(path.name)}.*"):
        found = owner.match(candidate.name)
        if found and found["host"] == HOST and not process_alive(int(found["pid"])):
            with contextlib.suppress(FileNotFoundError):  # another run removed it first
                candidate.unlink()
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
    tmp_path = make_temporary(path, ".part")
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
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
        self._dataset = rasterio.open(self._stage, "w", **profile)
        if self.colormap is not None:  # before any pixel is written (GDAL requires it)
            self._dataset.write_colormap(1, {int(k): tuple(v) for k, v in self.colormap.items()})
        return self

    def write(self, window: Window, data: np.ndarray) -> None:
        """Write ``data`` ``(count, h, w)`` or ``(h, w)`` into ``window`` of the grid."""
        from rasterio.windows import Window as RioWindow

        arr = data[None] if data.ndim == 2 else data
        self._dataset.write(
            arr.astype(self.dtype, copy=False),
            window=RioWindow(window.col, window.row, window.width, window.height),
        )

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._finish_stage()
                self._dataset.close()
                self._copy_to_cog()
            else:
                self._dataset.close()
        finally:
            if self._stage is not None and self._stage.exists():
                self._stage.unlink()

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
