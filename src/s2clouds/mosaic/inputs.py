"""The acquisitions of a composite: inputs expanded, opened, dated and put in a stable order.

Every input is opened through :func:`~s2clouds.io.scenes.read_scene` (SAFE, GeoTIFF/COG, band
folders, STAC items), so any format the opener learns (e.g. remote items) works here too. A
folder that holds STAC item JSON files (as ``s2clouds search`` writes them) stands for all
of its items.

The order of acquisitions is canonical: by acquisition date, then product id, then path. Every
tie in the merge rules is broken by this order, so a composite does not depend on the order in
which its inputs were given.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, S2CloudsError, SceneFormatError
from s2clouds.inference.inputs import expand_inputs
from s2clouds.io.dates import acquisition_date
from s2clouds.io.scene import Scene
from s2clouds.io.scenes import RASTER_SUFFIXES


@dataclass(frozen=True)
class Acquisition:
    """One input of a composite: its scene (all bands), where it came from, and its date."""

    path: str
    scene: Scene
    date: dt.date | None

    @property
    def key(self) -> tuple[str, str, str]:
        """The canonical sort key: date (unknown last), product id, path."""
        return (self.date.isoformat() if self.date else "9999", self.scene.product_id, self.path)

    @property
    def day_of_year(self) -> int:
        """1..366, 0 when the date is unknown."""
        return self.date.timetuple().tm_yday if self.date else 0

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path


@dataclass(frozen=True)
class Rejected:
    """An input left out, and why (unreadable, bands missing, no overlap)."""

    path: str
    reason: str


def expand_composite_inputs(arguments: Sequence[str]) -> list[str]:
    """Paths from ``arguments`` (paths, globs, ``@list`` files); a folder of STAC item JSON
    files (and nothing that is a scene itself) becomes its items, sorted."""
    out: list[str] = []
    for path in expand_inputs(arguments):
        folder = Path(path)
        items = sorted(folder.glob("*.json")) if folder.is_dir() else []
        rasters = items and any(f.suffix.lower() in RASTER_SUFFIXES for f in folder.iterdir())
        if items and not rasters and not folder.name.upper().endswith(".SAFE"):
            out.extend(str(p) for p in items)
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def open_acquisitions(
    paths: Sequence[str],
    *,
    bands: Sequence[str] | None = None,
    scale: str | None = None,
    level: str | None = None,
    drop_incomplete: bool = False,
) -> tuple[list[Acquisition], list[Rejected]]:
    """Open every input; returns the acquisitions in canonical order and the rejected inputs.

    An input that cannot be opened is rejected (reported, the others go on). ``bands``: the
    bands of the composite (default: those of the first readable input). An input that lacks
    any of them raises :class:`BandError` naming it, unless ``drop_incomplete``, which drops it
    with a warning. Raises :class:`SceneFormatError` when no input can be read.
    """
    opened: list[tuple[str, Scene]] = []
    rejected: list[Rejected] = []
    for path in paths:
        try:
            opened.append((path, _open(path, scale, level)))
        except S2CloudsError as exc:
            rejected.append(Rejected(path, str(exc)))
        except (OSError, ValueError) as exc:
            rejected.append(Rejected(path, f"cannot read {path}: {exc}"))
    if not opened:
        reasons = "; ".join(f"{r.path}: {r.reason}" for r in rejected) or "no input given"
        raise SceneFormatError(f"no input could be read ({reasons})")
    wanted = canonical_band_names(bands) if bands else opened[0][1].bands
    acquisitions: list[Acquisition] = []
    for path, scene in opened:
        missing = [b for b in wanted if b not in scene.bands]
        if missing:
            reason = f"{path} lacks band(s) {', '.join(missing)} (it has {', '.join(scene.bands)})"
            if not drop_incomplete:
                raise BandError(
                    f"{reason}; give bands= with the bands every input has, or "
                    "drop_incomplete=True to leave it out"
                )
            warnings.warn(f"left out: {reason}", stacklevel=2)
            rejected.append(Rejected(path, reason))
            continue
        selected = scene.select(wanted)
        acquisitions.append(Acquisition(path, selected, acquisition_date(selected, path)))
    if not acquisitions:
        raise BandError(f"no input has all of the bands {', '.join(wanted)}")
    return sorted(acquisitions, key=lambda a: a.key), rejected


def _open(path: str, scale: str | None, level: str | None) -> Scene:
    from s2clouds.io.scenes import read_scene

    return read_scene(path, scale=scale, level=level)
