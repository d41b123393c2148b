"""SEN12MS-CR-TS as TUM publishes it: a year of Sentinel-1/2 acquisitions per patch.

On disk (the extracted archives merged, as the dataset's own loader expects)::

    ROIs1868/100/S2/0/s2_ROIs1868_100_ImgNo_0_2018-01-03_patch_7.tif
    ROIs1868/100/S2/1/s2_ROIs1868_100_ImgNo_1_2018-01-14_patch_7.tif   ... up to ImgNo 29
    ROIs1868/100/S1/0/s1_ROIs1868_100_ImgNo_0_2018-01-02_patch_7.tif

i.e. ``<seed folder>/<roi>/<S1|S2>/<time index>/<s1|s2>_<seed folder>_<roi>_ImgNo_<t>_<date>
_patch_<n>.tif``: 256 x 256 px at 10 m, S2 the 13 L1C bands as uint16 DN (reflectance = DN /
10000), 30 time points through 2018. One series is one patch of one ROI; one sample is one of
its dates.

No cloud labels are shipped. As for :class:`~s2clouds.datasets.sen12mscr.SEN12MSCRSeries`,
each date is labelled by change (:mod:`s2clouds.labels.change`) against a per-pixel reference
of the series' other dates within ``window_days``; labelling reads the whole series, so it is
done when a sample is read (the series of the last samples read are cached). Dates the
labeller cannot use keep an all-255 mask unless ``keep_unusable=False`` (labels all at open).

Splits: ``split="test"`` keeps the dataset's official test ROIs (:data:`TEST_ROIS`, as its
reference loader defines them, "across continents"), ``"train"`` every other ROI; the release
defines no validation ROIs.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.datasets.sen12mscr import label_date, labelled_sample, read_series
from s2clouds.errors import DatasetError
from s2clouds.labels.change import ChangeLabels, ChangeRules

#: the official test ROIs of SEN12MS-CR-TS (``<seed folder>/<roi>``), from the dataset's
#: reference data loader (github.com/PatrickTUM/SEN12MS-CR-TS, ``data/dataLoader.py``)
TEST_ROIS = frozenset(
    {
        "ROIs1868/119",
        "ROIs1970/139",
        "ROIs2017/108",
        "ROIs2017/63",
        "ROIs1158/106",
        "ROIs1868/73",
        "ROIs2017/32",
        "ROIs1868/100",
        "ROIs1970/132",
        "ROIs2017/103",
        "ROIs1868/142",
        "ROIs1970/20",
        "ROIs2017/140",
    }
)
SPLITS = ("train", "test")
_SEED_DIR = re.compile(r"^ROIs\d{4}$")
_S2_FILE = re.compile(
    r"^s2_(?P<seed>ROIs\d{4})_(?P<roi>\d+)_ImgNo_(?P<t>\d+)_(?P<date>\d{4}-\d{2}-\d{2})"
    r"_patch_(?P<patch>\d+)\.tif$"
)


@dataclass(frozen=True, order=True)
class TSSeries:
    """One patch's time series: seed folder, ROI and patch number."""

    seed: str
    roi: int
    patch: int

    @property
    def roi_id(self) -> str:
        """``ROIs1868/100``, as the official split names ROIs."""
        return f"{self.seed}/{self.roi}"


def _seed_folders(root: Path) -> list[Path]:
    if _SEED_DIR.match(root.name):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _SEED_DIR.match(p.name))


def scan_series(root: Path) -> dict[TSSeries, list[tuple[int, dt.date, Path]]]:
    """Every S2 file under ``root`` by series: ``(time index, date, path)`` sorted by time."""
    found: dict[TSSeries, list[tuple[int, dt.date, Path]]] = {}
    for seed_dir in _seed_folders(root):
        for roi_dir in sorted(p for p in seed_dir.iterdir() if p.is_dir()):
            s2 = roi_dir / "S2"
            if not s2.is_dir():
                continue
            for time_dir in sorted(p for p in s2.iterdir() if p.is_dir()):
                with os.scandir(time_dir) as entries:
                    for entry in entries:
                        match = _S2_FILE.match(entry.name)
                        if match is None:
                            continue
                        try:
                            date = dt.date.fromisoformat(match["date"])
                        except ValueError as exc:
                            raise DatasetError(f"{entry.path}: bad date in the name") from exc
                        key = TSSeries(match["seed"], int(match["roi"]), int(match["patch"]))
                        found.setdefault(key, []).append((int(match["t"]), date, Path(entry.path)))
    return {k: sorted(v) for k, v in found.items()}


class SEN12MSCRTSRelease(CloudDataset):
    """Reader of the published SEN12MS-CR-TS tree (see the module docstring).

    ``root``: the folder holding the ``ROIs<seed>`` folders (or one of them). ``split``:
    ``"train"`` or ``"test"`` (official ROIs) or None for all. ``window_days``: dates within
    this many days of a date form its reference. ``rules``, ``keep_unusable``, ``canonical``:
    as for :class:`~s2clouds.datasets.sen12mscr_release.SEN12MSCRRelease`.

    Sample: ``image`` (13, H, W) float32 reflectance of one date; ``reference`` (13, H, W) the
    per-pixel reference it was labelled against; ``mask``/``mask_canonical`` (H, W) uint8
    canonical labels by change; ``valid``; ``crs``/``transform``; ``meta``: ``id``
    (``ROIs1868/100/p7/2018-01-03``), ``roi``, ``patch``, ``time_index``, ``date``, ``path``,
    ``split`` and the labeller's verdict.
    """

    name: ClassVar[str] = "sen12mscr-ts-release"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        window_days: float = 75.0,
        rules: ChangeRules | None = None,
        keep_unusable: bool = True,
        canonical: bool = True,
    ) -> None:
        self.root = require_path(root, "SEN12MS-CR-TS folder")
        if split is not None and split not in SPLITS:
            raise DatasetError(
                f"unknown split {split!r}; SEN12MS-CR-TS defines {', '.join(SPLITS)} (or None)"
            )
        self.split, self.window_days, self.canonical = split, window_days, canonical
        self.rules = rules or ChangeRules()
        series = scan_series(self.root)
        if split is not None:
            series = {
                k: v for k, v in series.items() if (k.roi_id in TEST_ROIS) == (split == "test")
            }
        self.series = {k: v for k, v in series.items() if len(v) >= 2}
        self.items = [(k, i) for k in sorted(self.series) for i in range(len(self.series[k]))]
        if not self.items:
            raise DatasetError(
                f"no SEN12MS-CR-TS series (two or more dates of a patch) in {self.root} (split "
                f"{split or 'all'}); expected ROIs<seed>/<roi>/S2/<t>/s2_ROIs<seed>_<roi>_ImgNo_"
                "<t>_<YYYY-MM-DD>_patch_<n>.tif"
            )
        if not keep_unusable:
            self.items = [(k, i) for k, i in self.items if self._labelled(k, i)[1].usable]

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True for a folder of ``ROIs<seed>/<roi>/S2/<t>/`` folders (or one seed folder)."""
        path = Path(path)
        if not path.is_dir():
            return False
        for seed_dir in _seed_folders(path):
            for roi_dir in seed_dir.iterdir():
                s2 = roi_dir / "S2"
                if s2.is_dir() and any(p.is_dir() and p.name.isdigit() for p in s2.iterdir()):
                    return True
        return False

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, key: TSSeries) -> tuple[np.ndarray, tuple[str, ...], Any, Any, np.ndarray]:
        entries = self.series[key]
        return read_series(tuple(p for _, _, p in entries), tuple(d for _, d, _ in entries))

    @functools.lru_cache(maxsize=32)  # noqa: B019  (one reader per dataset; bounded)
    def _labelled(self, key: TSSeries, position: int) -> tuple[np.ndarray, ChangeLabels]:
        stack, bands, _, _, days = self._read(key)
        return label_date(stack, position, bands, days, self.window_days, self.rules)

    def __getitem__(self, index: int) -> Sample:
        key, position = self.items[self._check_index(index)]
        stack, bands, crs, transform, _ = self._read(key)
        reference, labels = self._labelled(key, position)
        time_index, date, path = self.series[key][position]
        meta = {
            "id": f"{key.roi_id}/p{key.patch}/{date}",
            "roi": key.roi_id,
            "patch": key.patch,
            "time_index": time_index,
            "date": str(date),
            "path": str(path),
            "split": "test" if key.roi_id in TEST_ROIS else "train",
        }
        sample = labelled_sample(stack[position], bands, labels, crs, transform, meta)
        sample["reference"] = reference
        if not self.canonical:
            del sample["mask_canonical"]
        return sample

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "series": len({k for k, _ in self.items}),
            "rois": len({k.roi_id for k, _ in self.items}),
            "split": self.split or "all",
            "labels": f"change vs the other dates within {self.window_days:g} days",
        }
