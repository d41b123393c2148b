"""SEN12MS-CR cloudy/clear pairs and SEN12MS-CR-TS time series, labelled by change.

Layouts (13-band L1C GeoTIFFs, uint16 DN, reflectance = DN / 10000, band names in the band
descriptions or in the standard order B01 ... B12):

* pairs: ``<root>/<roi>_<season>_<scene>_p<patch>/{cloudy.tif, clear.tif}``;
* time series: ``<root>/<roi>/<YYYY-MM-DD>.tif`` (one file per acquisition).

Neither dataset ships cloud labels. Labels come from :mod:`s2clouds.labels.change`: each
cloudy image against its clear partner (pairs) or against a per-pixel reference of the other
dates around it (time series). Pairs the labeller cannot match are skipped unless
``keep_unusable`` is set (then their mask is all 255).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import L1C_BANDS, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA
from s2clouds.labels.change import ChangeLabels, ChangeRules, change_labels, temporal_reference


def read_reflectance(path: Path) -> tuple[np.ndarray, tuple[str, ...], Any, Any]:
    """(C, H, W) float32 reflectance (DN / 10000, 0 = no data -> NaN), band names, CRS and
    transform of a SEN12MS-CR GeoTIFF."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            dn = ds.read()
            described = tuple(d or "" for d in ds.descriptions)
            crs, transform = ds.crs, ds.transform
    except RasterioIOError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc}); replace the file") from exc
    if dn.shape[0] != len(L1C_BANDS):
        raise DatasetError(
            f"{path} has {dn.shape[0]} bands; SEN12MS-CR files hold the 13 L1C bands"
        )
    try:
        bands = canonical_band_names(described)
    except Exception:
        bands = L1C_BANDS
    image = dn.astype(np.float32) / 10000.0
    image[:, np.all(dn == 0, axis=0)] = np.nan
    return image, bands, crs, transform


def labelled_sample(
    image: np.ndarray,
    bands: tuple[str, ...],
    labels: ChangeLabels,
    crs: Any,
    transform: Any,
    meta: dict[str, Any],
) -> Sample:
    """The sample of a cloudy ``image`` (C, H, W) reflectance labelled by change: ``mask`` and
    ``mask_canonical`` (H, W) uint8 canonical labels, ``valid``, georeference, ``meta`` plus the
    labeller's verdict; ``reference`` is left None for the caller to fill."""
    mask = labels.mask
    return {
        "image": image,
        "mask": mask,
        "mask_canonical": mask,
        "valid": (mask != NODATA) & np.all(np.isfinite(image), axis=0),
        "bands": bands,
        "crs": crs,
        "transform": transform,
        "meta": meta
        | {
            "resolution": 10.0,
            "level": "L1C",
            "labels": "change (s2clouds.labels.change)",
            "usable": labels.usable,
            "reason": labels.reason,
            "shadow_offset": labels.shadow_offset,
        },
        "reference": None,
    }


class SEN12MSCRPairs(CloudDataset):
    """One sample per pair folder: the cloudy image, labelled against the clear one.

    Options: ``rules`` (:class:`ChangeRules`), ``keep_unusable`` (also yield pairs that
    cannot be labelled, all 255), ``exclude`` (pair folder names to leave out, e.g. held-out
    pairs), ``only`` (keep just these pair names), ``canonical`` (add ``mask_canonical``, the
    same canonical labels as ``mask``). The sample adds ``reference``: the clear
    image (C, H, W), and ``meta["id"]`` the pair folder name.
    """

    name: ClassVar[str] = "sen12mscr"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        root: str | Path,
        *,
        rules: ChangeRules | None = None,
        keep_unusable: bool = False,
        exclude: tuple[str, ...] | str = (),
        only: tuple[str, ...] | str = (),
        canonical: bool = True,
    ) -> None:
        self.canonical = canonical
        self.root = require_path(root, "SEN12MS-CR pairs folder")
        self.rules = rules or ChangeRules()
        excluded = {exclude} if isinstance(exclude, str) else set(exclude)
        kept = {only} if isinstance(only, str) else set(only)
        folders = sorted(
            p
            for p in self.root.iterdir()
            if (p / "cloudy.tif").is_file() and (p / "clear.tif").is_file()
        )
        folders = [p for p in folders if p.name not in excluded and (not kept or p.name in kept)]
        if not folders:
            raise DatasetError(
                f"{self.root} holds no pair folder with cloudy.tif and clear.tif; give the "
                "folder whose sub-folders hold the pairs"
            )
        self.pairs = folders
        if not keep_unusable:
            self.pairs = [p for p in folders if self._labelled(p)[1].usable]

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and any(
            (p / "cloudy.tif").is_file() and (p / "clear.tif").is_file()
            for p in path.iterdir()
            if p.is_dir()
        )

    def __len__(self) -> int:
        return len(self.pairs)

    @functools.lru_cache(maxsize=64)  # noqa: B019  (one reader per dataset; bounded)
    def _labelled(
        self, folder: Path
    ) -> tuple[tuple[np.ndarray, ...], ChangeLabels, tuple[Any, ...]]:
        cloudy, bands, crs, transform = read_reflectance(folder / "cloudy.tif")
        clear, clear_bands, _, _ = read_reflectance(folder / "clear.tif")
        if clear_bands != bands or clear.shape != cloudy.shape:
            raise DatasetError(f"{folder}: cloudy.tif and clear.tif differ in bands or size")
        labels = change_labels(cloudy, clear, bands, self.rules)
        return (cloudy, clear), labels, (bands, crs, transform)

    def __getitem__(self, index: int) -> Sample:
        folder = self.pairs[self._check_index(index)]
        (cloudy, clear), labels, (bands, crs, transform) = self._labelled(folder)
        sample = labelled_sample(
            cloudy, bands, labels, crs, transform, {"id": folder.name, "path": str(folder)}
        )
        sample["reference"] = clear
        if not self.canonical:
            del sample["mask_canonical"]
        return sample

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.name, "samples": len(self), "labels": "change vs clear partner"}


@functools.lru_cache(maxsize=4)
def read_series(
    files: tuple[Path, ...], dates: tuple[dt.date, ...]
) -> tuple[np.ndarray, tuple[str, ...], Any, Any, np.ndarray]:
    """The acquisitions ``files`` of one place as (T, C, H, W) float32 reflectance, their band
    names, CRS and transform (of the last file) and the days since the first of ``dates``
    (T,) int. The last four series read are cached (a date is labelled from all of them)."""
    images: list[np.ndarray] = []
    bands: tuple[str, ...] = ()
    crs: Any = None
    transform: Any = None
    for path in files:
        image, bands, crs, transform = read_reflectance(path)
        images.append(image)
    if len({im.shape for im in images}) != 1:
        raise DatasetError(f"{files[0].parent}: the dates differ in size; co-register them")
    days = np.array([(d - dates[0]).days for d in dates])
    return np.stack(images), bands, crs, transform, days


def label_date(
    series: np.ndarray,
    index: int,
    bands: tuple[str, ...],
    days: np.ndarray,
    window_days: float,
    rules: ChangeRules,
) -> tuple[np.ndarray, ChangeLabels]:
    """Date ``index`` of a (T, C, H, W) ``series`` labelled against the per-pixel reference of
    the other dates within ``window_days``: (reference (C, H, W), labels)."""
    reference = temporal_reference(
        series, index, bands, days=days.tolist(), window_days=window_days
    )
    return reference, change_labels(series[index], reference, bands, rules)


def _date(path: Path) -> dt.date:
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError as exc:
        raise DatasetError(f"{path}: time-series files are named YYYY-MM-DD.tif") from exc


class SEN12MSCRSeries(CloudDataset):
    """One sample per date of one or more time-series folders, labelled against a per-pixel
    reference of the other dates within ``window_days`` (see
    :func:`~s2clouds.labels.change.temporal_reference`). ``meta`` holds ``id``
    (``<roi>/<date>``) and ``date``."""

    name: ClassVar[str] = "sen12mscr-ts"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        root: str | Path,
        *,
        rules: ChangeRules | None = None,
        window_days: float = 75.0,
        keep_unusable: bool = False,
        canonical: bool = True,
    ) -> None:
        self.canonical = canonical
        self.root = require_path(root, "SEN12MS-CR-TS folder")
        self.rules, self.window_days = rules or ChangeRules(), window_days
        folders = (
            [self.root]
            if self._dated(self.root)
            else sorted(p for p in self.root.iterdir() if p.is_dir() and self._dated(p))
        )
        if not folders:
            raise DatasetError(
                f"{self.root} holds no folder of YYYY-MM-DD.tif files; give a time-series root"
            )
        self.items = [(folder, i) for folder in folders for i in range(len(self._files(folder)))]
        if not keep_unusable:
            self.items = [(f, i) for f, i in self.items if self._labelled(f, i)[1].usable]

    @staticmethod
    def _dated(folder: Path) -> bool:
        return len([p for p in folder.glob("*.tif") if p.stem[:2] in ("19", "20")]) >= 3

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def _files(folder: Path) -> tuple[Path, ...]:
        return tuple(sorted(folder.glob("*.tif"), key=_date))

    @staticmethod
    def _series(folder: Path) -> tuple[np.ndarray, tuple[str, ...], Any, Any, np.ndarray]:
        files = SEN12MSCRSeries._files(folder)
        return read_series(files, tuple(_date(p) for p in files))

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and (
            cls._dated(path) or any(cls._dated(p) for p in path.iterdir() if p.is_dir())
        )

    def __len__(self) -> int:
        return len(self.items)

    @functools.lru_cache(maxsize=32)  # noqa: B019  (labelled once: in __init__, then read)
    def _labelled(self, folder: Path, index: int) -> tuple[np.ndarray, ChangeLabels]:
        series, bands, _, _, days = self._series(folder)
        return label_date(series, index, bands, days, self.window_days, self.rules)

    def __getitem__(self, index: int) -> Sample:
        folder, position = self.items[self._check_index(index)]
        series, bands, crs, transform, _ = self._series(folder)
        reference, labels = self._labelled(folder, position)
        date = _date(self._files(folder)[position])
        sample = labelled_sample(
            series[position],
            bands,
            labels,
            crs,
            transform,
            {"id": f"{folder.name}/{date}", "date": str(date)},
        )
        sample["reference"] = reference
        if not self.canonical:
            del sample["mask_canonical"]
        return sample
