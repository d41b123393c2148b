"""Folders of labelled chips: ``<root>/<chip>/{B02.tif, B03.tif, ..., label.tif}``.

The layout of the On Cloud N chips and of many exports: one folder per chip holding
single-band rasters named by band and a label raster (``label.tif`` by default) in a
declared scheme (``binary`` by default: 0 not cloud, 1 cloud, 255 no data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA, LabelScheme, get_scheme, to_canonical


class ChipFolders(CloudDataset):
    """One sample per sub-folder of ``root`` that holds the label file (others are ignored).

    ``label``: label raster file name in each chip folder; ``scheme``: its label scheme (see
    ``s2clouds.labels``); ``canonical``: add ``mask_canonical``.

    Sample: ``image`` (C, H, W) float32 reflectance of the band files found (read with
    ``io.scenes.read_band_folder``: uint16 DN / 10000, NaN where DN is the no-data value);
    ``mask`` (H, W) label values as stored (uint8 for On Cloud N); ``mask_canonical`` (H, W)
    uint8, values the scheme does not define become 255; ``valid`` (H, W) bool, a defined label
    and every band finite; ``crs``/``transform`` of the band grid; ``meta``: ``id`` (folder
    name), ``resolution`` (m), ``path``, ``sun_zenith``/``sun_azimuth`` (degrees, from the
    raster tags, else None).
    """

    name: ClassVar[str] = "chips"
    label_scheme: ClassVar[str] = "binary"

    def __init__(
        self,
        root: str | Path,
        *,
        label: str = "label.tif",
        scheme: str = "binary",
        canonical: bool = True,
    ) -> None:
        self.root = require_path(root, "chip folder root")
        self.label, self.scheme, self.canonical = label, get_scheme(scheme), canonical
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        self.chips = [p for p in folders if (p / label).is_file()]
        if not self.chips:
            raise DatasetError(
                f"{self.root} holds no chip folder with a {label} ({len(folders)} folders "
                f"checked); give the folder whose sub-folders hold the bands and {label}, or "
                "name the label file with label=..."
            )

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and any(
            (p / "label.tif").is_file() for p in path.iterdir() if p.is_dir()
        )

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, index: int) -> Sample:
        chip = self.chips[self._check_index(index)]
        return chip_sample(chip, chip / self.label, self.scheme, canonical=self.canonical)


def read_label(path: Path) -> np.ndarray:
    """(H, W) label values as stored (first band of ``path``)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            return ds.read(1)
    except RasterioIOError as exc:
        raise DatasetError(f"{path}: cannot read the label raster ({exc}); replace it") from exc


def chip_sample(
    chip: Path,
    label: Path,
    scheme: LabelScheme,
    *,
    canonical: bool,
    meta: dict[str, Any] | None = None,
) -> Sample:
    """The sample of one chip: the band rasters of folder ``chip`` and the label raster
    ``label`` in ``scheme`` (see :class:`ChipFolders` for the keys); ``meta`` adds entries."""
    from s2clouds.io.scenes import read_band_folder

    scene = read_band_folder(chip)
    if scene.grid.resolution not in (10.0, 20.0, 60.0):
        raise DatasetError(f"{chip}: bands at {scene.grid.resolution} m; expected 10, 20 or 60")
    image = scene.read()
    mask = read_label(label)
    if mask.shape != image.shape[1:]:
        raise DatasetError(
            f"{label} is {mask.shape}, the bands are {image.shape[1:]}; "
            "export the label on the bands' grid"
        )
    labels = to_canonical(mask, scheme, unknown="nodata")
    sample: Sample = {
        "image": image,
        "mask": mask,
        "valid": (labels != NODATA) & np.all(np.isfinite(image), axis=0),
        "bands": scene.bands,
        "crs": scene.grid.crs,
        "transform": scene.grid.transform,
        "meta": {
            "id": chip.name,
            "resolution": scene.grid.resolution,
            "path": str(chip),
            "sun_zenith": getattr(scene.angles, "sun_zenith", None),
            "sun_azimuth": getattr(scene.angles, "sun_azimuth", None),
            **(meta or {}),
        },
    }
    if canonical:
        sample["mask_canonical"] = labels
    return sample
