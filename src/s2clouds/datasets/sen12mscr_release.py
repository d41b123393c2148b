"""SEN12MS-CR as TUM publishes it: cloudy and cloud-free Sentinel-2 patches beside Sentinel-1.

On disk (after extracting ``ROIs<seed>_<season>_{s1,s2,s2_cloudy}.tar.gz``)::

    ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p407.tif   cloudy S2
    ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p407.tif                       clear S2
    ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p407.tif                       S1 (VV, VH dB)

with the SEN12MS seeds and seasons (1158 spring, 1868 summer, 1970 fall, 2017 winter), 256 x
256 px at 10 m in UTM; the S2 files hold the 13 L1C bands as uint16 DN (reflectance = DN /
10000, acquired before baseline 04.00). A sample is one cloudy patch with its clear partner of
the same season, scene and patch number (and its S1 patch when ``with_s1``).

The release ships no cloud labels: as for :class:`~s2clouds.datasets.sen12mscr.SEN12MSCRPairs`
(the same data repackaged as ``<pair>/{cloudy,clear}.tif``), the mask comes from
:mod:`s2clouds.labels.change`, the cloudy image against its clear partner. Labelling reads both
files, so it is done when a sample is read, not when the 120 000-pair release is opened: pairs
the labeller cannot match keep an all-255 mask (``valid`` all False; ``meta["usable"]``
False) unless ``keep_unusable=False``, which labels every pair at open time to drop them.

Splits: ``split`` with ``splits`` (default ``<root>/splits``) reads the official SEN12MS split
lists (:func:`~s2clouds.datasets.splits.read_official_split`: the hold-out scenes, the
validation scenes, or the per-patch train/val/test lists); SEN12MS-CR uses SEN12MS's scenes and
patch numbers, so the same lists apply.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.datasets.base import CloudDataset, Sample, as_names, require_path
from s2clouds.datasets.sen12ms import SEASON_SEEDS, SPLIT_NAMES, SPLITS_FOLDER, PatchKey
from s2clouds.datasets.sen12mscr import labelled_sample, read_reflectance
from s2clouds.datasets.splits import OfficialSplit, read_official_split
from s2clouds.errors import DatasetError
from s2clouds.labels.change import ChangeLabels, ChangeRules, change_labels

SENSORS = ("s2_cloudy", "s2", "s1")
_SENSOR_ROOT = re.compile(
    r"^ROIs(?P<seed>\d{4})_(?P<season>spring|summer|fall|winter)_(?P<sensor>s1|s2|s2_cloudy)$"
)
_PATCH_FILE = re.compile(
    r"^ROIs(?P<seed>\d{4})_(?P<season>spring|summer|fall|winter)_(?P<sensor>s1|s2|s2_cloudy)_"
    r"(?P<scene>\d+)_p(?P<patch>\d+)\.tif$"
)


@dataclass(frozen=True, order=True)
class CRPatch(PatchKey):
    """One patch of the release: the SEN12MS key (season folder, scene and patch number) with
    the release's folder layout."""

    @property
    def id(self) -> str:
        """``ROIs1158_spring_1_p407``: the pair folder name of the repackaged layout."""
        return f"{self.roi}_{self.scene}_p{self.patch}"

    def path(self, root: Path, sensor: str) -> Path:
        """Where the release keeps this patch's ``sensor`` file under ``root``."""
        return root / f"{self.roi}_{sensor}" / f"{sensor}_{self.scene}" / self.file_name(sensor)


def _sensor_roots(root: Path) -> list[tuple[Path, str]]:
    """``(folder, sensor)`` of every ``ROIs<seed>_<season>_<sensor>`` folder in ``root``."""
    found = []
    for entry in sorted(root.iterdir()):
        match = _SENSOR_ROOT.match(entry.name)
        if match is not None and entry.is_dir():
            found.append((entry, match["sensor"]))
    return found


def scan_release(root: Path) -> dict[CRPatch, set[str]]:
    """Every patch file under ``root`` by patch, with the sensors found for it (names only)."""
    found: dict[CRPatch, set[str]] = {}
    for folder, sensor in _sensor_roots(root):
        for scene_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            with os.scandir(scene_dir) as entries:
                for entry in entries:
                    match = _PATCH_FILE.match(entry.name)
                    if match is None or match["sensor"] != sensor:
                        continue
                    key = CRPatch(
                        int(match["seed"]),
                        match["season"],
                        int(match["scene"]),
                        int(match["patch"]),
                    )
                    found.setdefault(key, set()).add(sensor)
    return found


def _read_s1(path: Path) -> np.ndarray:
    """(2, H, W) float32 VV, VH backscatter in dB of an S1 patch."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            if ds.count != 2:
                raise DatasetError(f"{path}: {ds.count} bands; SEN12MS-CR S1 patches hold VV, VH")
            return ds.read().astype(np.float32)
    except RasterioIOError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc}); replace the file") from exc


class SEN12MSCRRelease(CloudDataset):
    """Reader of the published SEN12MS-CR tree (see the module docstring).

    ``root``: the folder holding the ``ROIs<seed>_<season>_{s1,s2,s2_cloudy}`` folders.
    ``seasons``: keep only these meteorological seasons. ``split`` (``train``, ``val``,
    ``test``) with ``splits``: the official SEN12MS split lists (default ``<root>/splits``).
    ``with_s1``: also read the S1 patch (then required). ``rules``: the change labeller's
    :class:`~s2clouds.labels.change.ChangeRules`. ``keep_unusable``: keep pairs the labeller
    cannot match (default; their mask is all 255), or label every pair at open to drop them.
    ``canonical``: add ``mask_canonical`` (the same canonical labels as ``mask``).

    Sample: ``image`` (13, H, W) float32 reflectance of the cloudy patch (NaN where every
    band is 0); ``reference`` (13, H, W) the clear partner; ``s1`` (2, H, W) float32 dB or
    None; ``mask`` (H, W) uint8 canonical labels by change; ``valid``; ``crs``/``transform``;
    ``meta``: ``id``, ``roi``, ``season``, ``scene``, ``patch``, ``paths``, ``split`` and the
    labeller's ``usable``/``reason``/``shadow_offset``.
    """

    name: ClassVar[str] = "sen12mscr-release"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        root: str | Path,
        *,
        seasons: str | Sequence[str] | None = None,
        split: str | None = None,
        splits: str | Path | None = None,
        with_s1: bool = False,
        rules: ChangeRules | None = None,
        keep_unusable: bool = True,
        canonical: bool = True,
    ) -> None:
        self.root = require_path(root, "SEN12MS-CR folder")
        wanted = as_names(seasons) if seasons is not None else tuple(SEASON_SEEDS)
        unknown = sorted(set(wanted) - set(SEASON_SEEDS))
        if unknown:
            raise DatasetError(f"unknown season(s) {unknown}; use {', '.join(SEASON_SEEDS)}")
        if split is not None and split not in SPLIT_NAMES:
            raise DatasetError(f"unknown split {split!r}; use {', '.join(SPLIT_NAMES)} or None")
        self.split, self.with_s1, self.canonical = split, with_s1, canonical
        self.rules = rules or ChangeRules()
        required = {"s2_cloudy", "s2"} | ({"s1"} if with_s1 else set())
        found = {k: v for k, v in scan_release(self.root).items() if k.season in wanted}
        self.incomplete = sorted(k for k, v in found.items() if not required <= v)
        keys = sorted(k for k, v in found.items() if required <= v)
        self.official: OfficialSplit | None = None
        if split is not None:
            self.official = read_official_split(
                Path(splits) if splits is not None else self.root / SPLITS_FOLDER
            )
            official = self.official
            keys = [k for k in keys if official.split_of(k.roi, k.scene, k.patch) == split]
        if not keys:
            raise DatasetError(
                f"no complete SEN12MS-CR patch ({' + '.join(sorted(required))}) in {self.root} "
                f"(seasons {', '.join(wanted)}, split {split or 'all'}); expected "
                "ROIs<seed>_<season>_s2_cloudy/s2_cloudy_<scene>/..._p<patch>.tif beside the "
                "_s2 (and _s1) folders"
            )
        self.keys = keys if keep_unusable else [k for k in keys if self._labelled(k)[1].usable]

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True for a folder holding ``ROIs<seed>_<season>_s2_cloudy`` and ``..._s2`` folders."""
        path = Path(path)
        if not path.is_dir():
            return False
        sensors = {sensor for _, sensor in _sensor_roots(path)}
        return {"s2_cloudy", "s2"} <= sensors

    def __len__(self) -> int:
        return len(self.keys)

    @functools.lru_cache(maxsize=32)  # noqa: B019  (one reader per dataset; bounded)
    def _labelled(
        self, key: CRPatch
    ) -> tuple[tuple[np.ndarray, np.ndarray], ChangeLabels, tuple[Any, ...]]:
        cloudy, bands, crs, transform = read_reflectance(key.path(self.root, "s2_cloudy"))
        clear, clear_bands, _, _ = read_reflectance(key.path(self.root, "s2"))
        if clear_bands != bands or clear.shape != cloudy.shape:
            raise DatasetError(
                f"{key.id}: the cloudy and the clear patch differ in bands or size; one of "
                "them is damaged, download it again"
            )
        return (
            (cloudy, clear),
            change_labels(cloudy, clear, bands, self.rules),
            (bands, crs, transform),
        )

    def __getitem__(self, index: int) -> Sample:
        key = self.keys[self._check_index(index)]
        (cloudy, clear), labels, (bands, crs, transform) = self._labelled(key)
        paths = {s: str(key.path(self.root, s)) for s in SENSORS}
        meta = {
            "id": key.id,
            "roi": key.roi,
            "season": key.season,
            "scene": key.scene,
            "patch": key.patch,
            "paths": paths,
            "split": self.split or "all",
        }
        sample = labelled_sample(cloudy, bands, labels, crs, transform, meta)
        sample["reference"] = clear
        sample["s1"] = _read_s1(key.path(self.root, "s1")) if self.with_s1 else None
        if sample["s1"] is not None and sample["s1"].shape[1:] != cloudy.shape[1:]:
            raise DatasetError(f"{key.id}: the S1 patch differs in size from the S2 patches")
        if not self.canonical:
            del sample["mask_canonical"]
        return sample

    def summary(self) -> dict[str, Any]:
        seasons: dict[str, int] = {}
        for key in self.keys:
            seasons[key.season] = seasons.get(key.season, 0) + 1
        return {
            **super().summary(),
            "seasons": seasons,
            "scenes": len({(k.roi, k.scene) for k in self.keys}),
            "split": self.split or "all",
            "split_lists": list(self.official.source) if self.official else None,
            "incomplete_patches": len(self.incomplete),
            "labels": "change vs the clear partner (s2clouds.labels.change)",
        }
