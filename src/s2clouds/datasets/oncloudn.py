"""The On Cloud N competition dataset (Radiant Earth, "Sentinel-2 Cloud Cover Segmentation").

On disk, as the competition distributes it::

    train_features/<chip_id>/B02.tif B03.tif B04.tif B08.tif   512 x 512 uint16, 10 m, UTM
    train_labels/<chip_id>.tif                                  512 x 512 uint8, 0 / 1
    train_metadata.csv                                          chip_id, location, datetime,
                                                                cloudpath

The features are L2A surface reflectance DN (reflectance = DN / 10000, no offset; 0 is no
data); labels are 0 not cloud, 1 cloud (the ``binary`` scheme: no shadow class, shadow is 0).
``train_metadata.csv`` is optional; when present its ``location`` and ``datetime`` go into
``meta`` and ``locations`` filters on them. The public release is the training set; its
``test_features`` were never published with labels.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from s2clouds.datasets.base import CloudDataset, Sample, as_names, require_path
from s2clouds.datasets.chips import chip_sample
from s2clouds.errors import DatasetError
from s2clouds.labels import get_scheme

FEATURES = "train_features"
LABELS = "train_labels"
METADATA = "train_metadata.csv"
METADATA_COLUMNS = ("chip_id", "location", "datetime")


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """``{chip_id: row}`` of ``train_metadata.csv`` (header with at least ``chip_id``)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read it as CSV ({exc}); fix or remove it") from exc
    if rows and "chip_id" not in rows[0]:
        raise DatasetError(
            f"{path}: no chip_id column (it has {', '.join(rows[0])}); the competition's "
            f"metadata has {', '.join(METADATA_COLUMNS)}"
        )
    return {row["chip_id"]: {k: (v or "").strip() for k, v in row.items() if k} for row in rows}


class OnCloudN(CloudDataset):
    """One sample per chip of ``train_features`` that has a label in ``train_labels``.

    ``locations``: keep only chips whose metadata ``location`` is one of these (needs
    ``train_metadata.csv``). ``canonical``: add ``mask_canonical``.

    Sample (as :class:`~s2clouds.datasets.chips.ChipFolders`): ``image`` (4, 512, 512) float32
    reflectance B02 B03 B04 B08, NaN where DN is 0; ``mask`` (H, W) uint8 0 / 1; ``valid``;
    ``crs``/``transform``; ``meta``: ``id`` (chip id), ``location``, ``datetime`` (from the
    metadata, else None), ``resolution``, ``path``.
    """

    name: ClassVar[str] = "oncloudn"
    label_scheme: ClassVar[str] = "binary"

    def __init__(
        self,
        root: str | Path,
        *,
        locations: str | Sequence[str] | None = None,
        canonical: bool = True,
    ) -> None:
        self.root = require_path(root, "On Cloud N folder")
        self.canonical = canonical
        features = require_path(self.root / FEATURES, "On Cloud N train_features folder")
        labels = self.root / LABELS
        metadata_path = self.root / METADATA
        self.metadata = read_metadata(metadata_path) if metadata_path.is_file() else {}
        chips = sorted(p for p in features.iterdir() if p.is_dir())
        self.unlabelled = [p.name for p in chips if not (labels / f"{p.name}.tif").is_file()]
        self.chips = [p for p in chips if (labels / f"{p.name}.tif").is_file()]
        if locations is not None:
            if not self.metadata:
                raise DatasetError(f"locations=... needs {metadata_path}; it is not there")
            wanted = set(as_names(locations))
            self.chips = [
                p for p in self.chips if self.metadata.get(p.name, {}).get("location") in wanted
            ]
        if not self.chips:
            raise DatasetError(
                f"{self.root} holds no chip of {FEATURES}/ with a label {LABELS}/<chip_id>.tif "
                f"({len(chips)} chips, locations {locations or 'all'}); give the folder that "
                f"holds {FEATURES}/ and {LABELS}/"
            )

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return (path / FEATURES).is_dir() and (path / LABELS).is_dir()

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> Sample:
        chip = self.chips[self._check_index(index)]
        row = self.metadata.get(chip.name, {})
        meta = {"location": row.get("location"), "datetime": row.get("datetime")}
        return chip_sample(
            chip,
            self.root / LABELS / f"{chip.name}.tif",
            get_scheme(self.label_scheme),
            canonical=self.canonical,
            meta=meta,
        )

    def summary(self) -> dict[str, Any]:
        places: dict[str, int] = {}
        for chip in self.chips:
            place = self.metadata.get(chip.name, {}).get("location") or "unknown"
            places[place] = places.get(place, 0) + 1
        return {
            **super().summary(),
            "locations": places,
            "metadata": bool(self.metadata),
            "chips_without_label": len(self.unlabelled),
        }
