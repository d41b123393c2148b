"""SEN12MS: Sentinel-1 / Sentinel-2 / MODIS land-cover patch triplets (Schmitt et al. 2019).

On disk (after extracting the ``ROIs<seed>_<season>_{s1,s2,lc}.tar.gz`` archives)::

    ROIs<seed>_<season>/{s1,s2,lc}_<scene>/ROIs<seed>_<season>_{s1,s2,lc}_<scene>_p<patch>.tif

with seeds 1158 spring, 1868 summer, 1970 fall and 2017 winter (meteorological seasons of the
northern hemisphere, Dec 2016 - Nov 2017). Patches are 256 x 256 GeoTIFFs at 10 m in UTM:
``s1`` 2 bands VV, VH backscatter in dB (float32); ``s2`` 13 bands B01..B12 with B8A after
B08 (uint16 L1C DN, reflectance = DN / 10000, all acquired before processing baseline 04.00);
``lc`` 4 MODIS layers IGBP, LCCS land cover, LCCS land use, LCCS surface hydrology (255 = no
data; tables in :mod:`s2clouds.labels.landcover`). A triplet is one patch of the three sensors
with the same season, scene and patch number.

The reader's root is the dataset folder or a single ``ROIs<seed>_<season>`` folder.
``seasons.csv`` (optional, in the dataset folder) gives the climatic season of each scene; it
is read as CSV with a header and the columns ``roi`` (folder name, e.g. ``ROIs1158_spring``),
``scene`` (integer) and ``season`` (spring, summer, fall or winter).

The S2 patches are cloud-free mosaics whose cloudy patches were removed by experts (paper,
Sections 3.1 and 3.3), so with ``canonical=True`` the canonical cloud mask is "clear" wherever
the sample is valid: useful to measure false cloud detections, not to train cloud classes.

Sample: ``image`` (C, H, W) float32 reflectance of the chosen S2 bands; ``s1`` (2, H, W)
float32 dB (None with ``with_s1=False``); ``mask`` (H, W) uint8 values of the chosen land-cover
layer (IGBP by default); ``valid`` (H, W) bool (land cover known, every band finite); ``crs`` and
``transform`` of the S2 GeoTIFF; ``meta`` season, climatic_season, scene, patch, roi, layer,
paths.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import MSI_BAND_NAMES, band_indices, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, as_names, require_path
from s2clouds.datasets.splits import OfficialSplit, read_official_split
from s2clouds.errors import DatasetError
from s2clouds.labels.landcover import LANDCOVER_NODATA, get_landcover_layer
from s2clouds.labels.schemes import CLEAR, NODATA
from s2clouds.radiometry import DN_NO_OFFSET, Radiometry, to_reflectance

#: ROI seed of each meteorological season
SEASON_SEEDS: dict[str, int] = {"spring": 1158, "summer": 1868, "fall": 1970, "winter": 2017}
SENSORS = ("s1", "s2", "lc")
S1_BANDS = ("VV", "VH")
#: bands per sensor file
SENSOR_BAND_COUNT = {"s1": len(S1_BANDS), "s2": len(MSI_BAND_NAMES), "lc": 4}
SPLIT_NAMES = ("train", "val", "test")
SPLIT_BY = ("roi", "season", "official")
#: where ``split_by="official"`` looks for the split lists when ``splits`` is not given
SPLITS_FOLDER = "splits"
SEASONS_FILE = "seasons.csv"

_ROI_DIR = re.compile(r"^ROIs(?P<seed>\d{4})_(?P<season>spring|summer|fall|winter)$")
_SENSOR_DIR = re.compile(r"^(?P<sensor>s1|s2|lc)_(?P<scene>\d+)$")
_PATCH_FILE = re.compile(
    r"^ROIs(?P<seed>\d{4})_(?P<season>spring|summer|fall|winter)_"
    r"(?P<sensor>s1|s2|lc)_(?P<scene>\d+)_p(?P<patch>\d+)\.tif$"
)


@dataclass(frozen=True, order=True)
class PatchKey:
    """What identifies a triplet: ROI folder (seed and season), scene and patch number."""

    seed: int
    season: str
    scene: int
    patch: int

    @property
    def roi(self) -> str:
        """The season folder name, e.g. ``ROIs1158_spring``."""
        return f"ROIs{self.seed}_{self.season}"

    def file_name(self, sensor: str) -> str:
        return f"{self.roi}_{sensor}_{self.scene}_p{self.patch}.tif"


def _parse_patch_file(name: str) -> tuple[PatchKey, str] | None:
    match = _PATCH_FILE.match(name)
    if match is None:
        return None
    key = PatchKey(int(match["seed"]), match["season"], int(match["scene"]), int(match["patch"]))
    return key, match["sensor"]


def _roi_folders(root: Path) -> list[Path]:
    """The ``ROIs<seed>_<season>`` folders of ``root``: ``root`` itself when it is one."""
    if _ROI_DIR.match(root.name):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _ROI_DIR.match(p.name))


def _scan_tree(root: Path) -> dict[PatchKey, dict[str, Path]]:
    """Every patch file under ``root`` (ROI folder / sensor folder / file), by triplet."""
    found: dict[PatchKey, dict[str, Path]] = {}
    for roi_dir in _roi_folders(root):
        for sensor_dir in sorted(p for p in roi_dir.iterdir() if _SENSOR_DIR.match(p.name)):
            with os.scandir(sensor_dir) as entries:
                for entry in entries:
                    parsed = _parse_patch_file(entry.name)
                    if parsed is not None:
                        found.setdefault(parsed[0], {})[parsed[1]] = Path(entry.path)
    return found


def _partner_path(s2_path: Path, key: PatchKey, sensor: str) -> Path:
    """Where the ``sensor`` patch of the triplet of ``s2_path`` lies: in the sensor folder beside
    the s2 folder (the dataset's layout), else in the s2 file's own folder (a flat copy)."""
    in_layout = s2_path.parent.parent / f"{sensor}_{key.scene}" / key.file_name(sensor)
    return in_layout if in_layout.exists() else s2_path.with_name(key.file_name(sensor))


def _from_s2_files(files: Sequence[Path | str]) -> dict[PatchKey, dict[str, Path]]:
    """Triplets of explicitly given S2 patch files; partners are looked up beside them."""
    found: dict[PatchKey, dict[str, Path]] = {}
    for path in map(Path, files):
        parsed = _parse_patch_file(path.name)
        if parsed is None or parsed[1] != "s2":
            raise DatasetError(
                f"{path}: not a SEN12MS s2 patch name (ROIs<seed>_<season>_s2_<scene>_p<patch>.tif)"
            )
        key = parsed[0]
        partners = {s: _partner_path(path, key, s) for s in SENSORS if s != "s2"}
        found[key] = {"s2": require_path(path, "SEN12MS s2 patch")} | {
            s: p for s, p in partners.items() if p.exists()
        }
    return found


def read_seasons_csv(path: Path) -> dict[tuple[str, int], str]:
    """``{(roi folder, scene): climatic season}`` from a ``seasons.csv`` (see module doc)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        table = {}
        for row in rows:
            fields = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            table[(fields["roi"], int(fields["scene"]))] = fields["season"].lower()
    except (KeyError, ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise DatasetError(
            f"{path}: cannot read it as a seasons table ({exc}); it needs a header with the "
            "columns roi, scene, season (e.g. 'ROIs1158_spring,1,fall'); fix or remove it"
        ) from exc
    return table


def assign_splits(groups: Sequence[Any], fractions: Sequence[float], seed: int) -> dict[Any, str]:
    """Give each group a split name (train, val, test) by a seeded shuffle of the groups.

    Group counts per split are ``round(fraction * n)`` for train and val, the rest for test;
    the same groups, fractions and seed always give the same answer.
    """
    if (
        len(fractions) != len(SPLIT_NAMES)
        or any(f < 0 for f in fractions)
        or not np.isclose(sum(fractions), 1.0)
    ):
        raise DatasetError(
            f"split fractions {tuple(fractions)} must be three non-negative numbers "
            "(train, val, test) that sum to 1, e.g. (0.8, 0.1, 0.1)"
        )
    ordered = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_train = round(fractions[0] * len(ordered))
    n_val = min(round(fractions[1] * len(ordered)), len(ordered) - n_train)
    bounds = np.array([n_train, n_train + n_val])
    return {
        ordered[i]: SPLIT_NAMES[int(np.searchsorted(bounds, rank, side="right"))]
        for rank, i in enumerate(order)
    }


def _read_raster(path: Path, sensor: str, indexes: list[int]) -> tuple[np.ndarray, Any, Any, Any]:
    """Bands ``indexes`` (1-based) of a patch file: (array (C, H, W), crs, transform, nodata)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            expected = SENSOR_BAND_COUNT[sensor]
            if src.count != expected:
                raise DatasetError(
                    f"{path}: {src.count} bands, but SEN12MS {sensor} patches have {expected}; "
                    "the file is damaged or in the wrong folder"
                )
            return src.read(indexes), src.crs, src.transform, src.nodata
    except RasterioIOError as exc:
        raise DatasetError(f"{path}: cannot read the GeoTIFF ({exc}); download it again") from exc


class SEN12MS(CloudDataset):
    """Reader of SEN12MS triplets (see the module docstring for layout and sample keys).

    ``root``: the dataset folder (holding the ``ROIs*_<season>`` folders) or a list of S2 patch
    files. ``bands``: S2 bands to return, any spelling (default all 13). ``layer``: land-cover
    layer for ``mask`` (``igbp``, ``lccs_lc``, ``lccs_lu``, ``lccs_sh``). ``seasons``: keep only
    these meteorological seasons. ``split``: ``train``, ``val``, ``test`` or None for all;
    groups (``split_by`` ``"roi"``: one scene of one season; ``"season"``) are shuffled with
    ``seed`` and shared out by ``fractions``; ``split_by="official"`` uses the published
    SEN12MS split instead (``splits``: the repository's ``splits/`` folder, default
    ``<root>/splits``; see :func:`~s2clouds.datasets.splits.read_official_split`).
    ``missing``: ``"error"`` refuses incomplete
    triplets, ``"skip"`` leaves them out (listed in ``self.skipped``). ``with_s1``: read the
    S1 patch (and require it). ``canonical``: add ``mask_canonical`` (clear where valid).
    """

    name: ClassVar[str] = "sen12ms"
    #: cloud-free mosaics: maskers are scored for false cloud detection
    protocol: ClassVar[str] = "false_cloud"
    #: land-cover layer of ``mask`` (see :mod:`s2clouds.labels.landcover`, not a cloud scheme)
    label_scheme: ClassVar[str] = "igbp"

    #: the cloud benchmark scores the clear canonical mask (false clouds); S1 is not needed
    @classmethod
    def benchmark_options(cls, splits: Sequence[str], layers: Sequence[str]) -> dict[str, Any]:
        """The cloud benchmark scores S2 against a canonical mask: no S1 is read."""
        return {**super().benchmark_options(splits, layers), "canonical": True, "with_s1": False}

    def __init__(
        self,
        root: Path | str | Sequence[Path | str],
        *,
        bands: str | Sequence[str] = MSI_BAND_NAMES,
        layer: str = "igbp",
        seasons: str | Sequence[str] | None = None,
        split: str | None = None,
        split_by: str = "roi",
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        splits: str | Path | None = None,
        missing: str = "error",
        with_s1: bool = True,
        canonical: bool = False,
        radiometry: Radiometry = DN_NO_OFFSET,
    ) -> None:
        wanted_seasons = as_names(seasons) if seasons is not None else None
        self._check_options(wanted_seasons, split, split_by, missing)
        self.bands = canonical_band_names(bands)
        self._band_indexes = [i + 1 for i in band_indices(MSI_BAND_NAMES, self.bands)]
        self.layer = get_landcover_layer(layer)
        self.with_s1 = with_s1
        self.canonical = canonical
        self.radiometry = radiometry
        self.split = split
        if isinstance(root, str | Path):
            self.root: Path | None = require_path(root, "SEN12MS folder")
            triplets = _scan_tree(self.root)
            # a single ROI folder given as root: the table lies in the dataset root above it
            dataset_root = self.root.parent if _ROI_DIR.match(self.root.name) else self.root
            csv_path = dataset_root / SEASONS_FILE
            self.climatic = read_seasons_csv(csv_path) if csv_path.exists() else {}
        else:
            self.root = None
            triplets = _from_s2_files(root)
            self.climatic = {}
        if wanted_seasons is not None:
            triplets = {k: v for k, v in triplets.items() if k.season in wanted_seasons}
        self.required = ("s2", "lc", "s1") if with_s1 else ("s2", "lc")
        self.skipped: list[tuple[PatchKey, tuple[str, ...]]] = []
        complete = self._complete_triplets(triplets, missing)
        self.official: OfficialSplit | None = None
        if split is not None and split_by == "official":
            self.official = read_official_split(
                splits if splits is not None else self._splits_folder(root)
            )
            official = self.official
            complete = {
                k: v
                for k, v in complete.items()
                if official.split_of(k.roi, k.scene, k.patch) == split
            }
            if not complete:
                raise DatasetError(
                    f"split {split!r} is empty: none of the patches found is in the official "
                    f"{split} list ({', '.join(official.source)}); check the splits folder"
                )
        elif split is not None and complete:
            groups = {k: self._group(k, split_by) for k in complete}
            chosen = assign_splits(list(groups.values()), fractions, seed)
            complete = {k: v for k, v in complete.items() if chosen[groups[k]] == split}
            if not complete:
                raise DatasetError(
                    f"split {split!r} is empty: {len(set(groups.values()))} {split_by} groups "
                    f"shared out by fractions {tuple(fractions)} leave none for it; use other "
                    "fractions, split_by='roi', or more data"
                )
        self.keys = sorted(complete)
        self.paths = complete
        if not self.keys:
            raise DatasetError(
                f"no SEN12MS patch triplets found in {root} (seasons {seasons or 'all'}, split "
                f"{split or 'all'}); expected ROIs<seed>_<season>/s2_<scene>/..._p<patch>.tif"
            )

    @staticmethod
    def _check_options(
        seasons: Sequence[str] | None, split: str | None, split_by: str, missing: str
    ) -> None:
        unknown = sorted(set(seasons or ()) - set(SEASON_SEEDS))
        if unknown:
            raise DatasetError(f"unknown season(s) {unknown}; use {', '.join(SEASON_SEEDS)}")
        if split is not None and split not in SPLIT_NAMES:
            raise DatasetError(f"unknown split {split!r}; use {', '.join(SPLIT_NAMES)} or None")
        if split_by not in SPLIT_BY:
            raise DatasetError(f"split_by must be one of {', '.join(SPLIT_BY)}, not {split_by!r}")
        if missing not in ("error", "skip"):
            raise DatasetError(f"missing must be 'error' or 'skip', not {missing!r}")

    @staticmethod
    def _splits_folder(root: Path | str | Sequence[Path | str]) -> Path:
        """``<dataset root>/splits`` (beside the ROI folders; above a single ROI folder)."""
        if not isinstance(root, str | Path):
            raise DatasetError(
                "split_by='official' with a list of files needs splits=<the splits/ folder>"
            )
        folder = Path(root)
        return (folder.parent if _ROI_DIR.match(folder.name) else folder) / SPLITS_FOLDER

    @staticmethod
    def _group(key: PatchKey, split_by: str) -> str:
        return key.season if split_by == "season" else f"{key.roi}_{key.scene}"

    def _complete_triplets(
        self, triplets: dict[PatchKey, dict[str, Path]], missing: str
    ) -> dict[PatchKey, dict[str, Path]]:
        complete = {}
        for key, paths in triplets.items():
            lacking = tuple(s for s in self.required if s not in paths)
            if lacking:
                self.skipped.append((key, lacking))
            else:
                complete[key] = paths
        if self.skipped and missing == "error":
            shown = "; ".join(
                f"{k.file_name(s)} (partner of {k.roi} scene {k.scene} p{k.patch})"
                for k, lacking in self.skipped[:5]
                for s in lacking
            )
            more = f" and {len(self.skipped) - 5} more triplets" if len(self.skipped) > 5 else ""
            raise DatasetError(
                f"missing partner files: {shown}{more}; download or extract them, or pass "
                "missing='skip' to leave incomplete triplets out"
            )
        return complete

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True for a folder holding ``ROIs<seed>_<season>`` folders, or such a folder itself."""
        path = Path(path)
        if not path.is_dir():
            return False
        return bool(_roi_folders(path))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> Sample:
        key = self.keys[self._check_index(index)]
        paths = self.paths[key]
        dn, crs, transform, nodata = _read_raster(paths["s2"], "s2", self._band_indexes)
        image = to_reflectance(dn, self.bands, self.radiometry, nodata=nodata)
        lc, *_ = _read_raster(paths["lc"], "lc", [self.layer.band])
        mask = self._landcover_mask(lc[0], paths["lc"])
        s1 = _read_raster(paths["s1"], "s1", [1, 2])[0].astype(np.float32) if self.with_s1 else None
        self._check_shapes(
            key, image=image[0], lc=mask, **({"s1": s1[0]} if s1 is not None else {})
        )
        valid = (mask != self.layer.nodata) & np.isfinite(image).all(axis=0)
        if s1 is not None:
            valid &= np.isfinite(s1).all(axis=0)
        sample: Sample = {
            "image": image,
            "s1": s1,
            "mask": mask,
            "valid": valid,
            "bands": self.bands,
            "crs": crs,
            "transform": transform,
            "meta": self._meta(key, paths),
        }
        if self.canonical:
            sample["mask_canonical"] = np.where(valid, CLEAR, NODATA).astype(np.uint8)
        return sample

    @staticmethod
    def _landcover_mask(values: np.ndarray, path: Path) -> np.ndarray:
        """(H, W) land-cover values as uint8; refuses values that do not fit (not a MODIS layer)."""
        if values.size and (values.min() < 0 or values.max() > LANDCOVER_NODATA):
            raise DatasetError(
                f"{path}: land-cover values {values.min()}..{values.max()} are outside 0-255; "
                "this is not a SEN12MS lc patch"
            )
        return values.astype(np.uint8)

    def _check_shapes(self, key: PatchKey, **layers: np.ndarray) -> None:
        shapes = {name: layer.shape for name, layer in layers.items()}
        if len(set(shapes.values())) > 1:
            raise DatasetError(
                f"{key.roi} scene {key.scene} p{key.patch}: the patch files differ in size "
                f"{shapes}; one of them is damaged, download it again"
            )

    def _meta(self, key: PatchKey, paths: dict[str, Path]) -> dict[str, Any]:
        return {
            "season": key.season,
            "climatic_season": self.climatic.get((key.roi, key.scene)),
            "roi": key.roi,
            "seed": key.seed,
            "scene": key.scene,
            "patch": key.patch,
            "layer": self.layer.name,
            "s1_bands": S1_BANDS,
            "paths": {sensor: str(p) for sensor, p in paths.items()},
        }

    def summary(self) -> dict[str, Any]:
        per_season: dict[str, int] = {}
        for key in self.keys:
            per_season[key.season] = per_season.get(key.season, 0) + 1
        return {
            **super().summary(),
            "seasons": per_season,
            "scenes": len({(k.roi, k.scene) for k in self.keys}),
            "split": self.split or "all",
            "split_lists": list(self.official.source) if self.official else None,
            "bands": self.bands,
            "layer": self.layer.name,
            "skipped_incomplete": len(self.skipped),
            "seasons_csv": bool(self.climatic),
        }
