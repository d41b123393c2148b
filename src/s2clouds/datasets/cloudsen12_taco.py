"""CloudSEN12 (CloudSEN12+) as published today: TACO files read with ``tacoreader``.

Layout (the dataset's hub page; ``tacoreader`` 0.5/0.6 source)::

    <folder>/cloudsen12-l1c.0000.part.taco ...   Level-1C patches
    <folder>/cloudsen12-l2a.0000.part.taco ...   Level-2A patches
    <folder>/cloudsen12-extra.0000.part.taco ... other layers of the same patches

Each part is a TACO v1 file: the magic bytes ``WX``, the offset and length of a Parquet
metadata table (bytes 2-18) and of a JSON collection (bytes 26-42), then the data. Every row
of the table is one patch, itself a nested "tortilla" of GeoTIFF items. An image part's
patch holds the image first (``s2l1c`` / ``s2l2a``: uint16 digital numbers, reflectance =
DN x 0.0001) and the human label ``target`` second (0 clear, 1 thick cloud, 2 thin cloud,
3 cloud shadow, 99 no label: scribble and nolabel patches hold it). The extra part's patch,
linked by the same ``tortilla:id``, holds ``lc10``, ``elevation``, ``vv``, ``vh`` and the
masks of other algorithms (:data:`EXTRA_MASKS`), not normalised to the CloudSEN12 classes.

Metadata columns used: ``label_type`` (high, scribble, nolabel), ``real_proj_shape`` (509 or
2000), ``tortilla:data_split`` (train, validation, test), ``roi_id``; every other scalar
column (cloud shares ``clear_percentage`` ... ``cloud_shadow_percentage``, ``s2_id``, ...)
goes into each sample's ``meta``.

Padding: a patch of ``real_proj_shape`` N is stored on a canvas divisible by 32 (509 on 512,
2000 on 2048) with zeros on the left and bottom, so its data are rows ``0:N`` and the last
``N`` columns. Outside that window ``valid`` is False; ``crop=True`` returns the window only.

Band order of the image item: the GeoTIFF's band descriptions when they are band names, else
the catalogue order (B01 ... B12 with B10 for L1C; without B10 for L2A, further non-spectral
bands of an L2A item are not read).

``tacoreader`` (an optional extra: ``pip install 's2clouds[cloudsen12-taco]'``) reads the
tables; the legacy 0.5/0.6 releases read this format, 2.x refuses it. The parts' headers are
checked here first, so a truncated part is refused by name instead of being skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds._optional import require
from s2clouds.bands import L1C_BANDS, L2A_BANDS, canonical_band_name, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, as_names, require_path
from s2clouds.errors import BandError, DatasetError
from s2clouds.labels import NODATA, to_canonical

MAGIC = b"WX"
TORTILLA_MAGIC = b"#y"
HEADER_BYTES = 42
PART_PATTERN = re.compile(r"cloudsen12-(l1c|l2a|extra)(?:\.\d+\.part)?\.taco$", re.IGNORECASE)
FLAVOURS = ("l1c", "l2a", "extra")
LEVELS = ("L1C", "L2A")
LABEL_TYPES = ("high", "scribble", "nolabel")
#: reader split names -> values of ``tortilla:data_split``
SPLITS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
SPLIT_COLUMN = "tortilla:data_split"
ID_COLUMN = "tortilla:id"
LABEL_ITEM = "target"
LABEL_NODATA = 99
REFLECTANCE_SCALE = 0.0001
LEVEL_BANDS: dict[str, tuple[str, ...]] = {"L1C": L1C_BANDS, "L2A": L2A_BANDS}
#: CloudScore+ score below which a pixel is cloud (the threshold of Google's examples)
CLOUDSCORE_CLEAR_THRESHOLD = 0.60
#: suffix of the cloud masks derived from the CloudScore+ scores
CLOUD_SUFFIX = "_cloud"
#: extra-part masks (item name without ``cloudmask_``) -> label scheme of their values.
#: UnetMobV2 and SEnSeI masks are read in the CloudSEN12 classes (0-3; 99 no data), which
#: also reads a clear/cloud 0/1 mask right.
EXTRA_MASKS: dict[str, str] = {
    "qa60": "qa60",
    "sen2cor": "sen2cor",
    "s2cloudless": "s2cloudless",
    "unetmobv2_v1": "cloudsen12",
    "unetmobv2_v2": "cloudsen12",
    "sensei_v2": "cloudsen12",
    f"cloudscore_cs_v1{CLOUD_SUFFIX}": "s2cloudless",
    f"cloudscore_cs_cdf_v1{CLOUD_SUFFIX}": "s2cloudless",
}
#: short names a user may give for a layer (``layer:cloudscore_cs``)
LAYER_ALIASES: dict[str, str] = {
    "cloudscore_cs": f"cloudscore_cs_v1{CLOUD_SUFFIX}",
    "cloudscore_cs_cdf": f"cloudscore_cs_cdf_v1{CLOUD_SUFFIX}",
    "cloudscore": f"cloudscore_cs_v1{CLOUD_SUFFIX}",
    "unetmobv2": "unetmobv2_v2",
    "sensei": "sensei_v2",
}
CLOUDSCORE_LAYERS = ("cloudscore_cs_v1", "cloudscore_cs_cdf_v1")
#: metadata columns that describe storage, not the patch
_STORAGE_COLUMNS = (
    "internal:subfile",
    "tortilla:offset",
    "tortilla:length",
    "tortilla:file_format",
)


def import_tacoreader() -> Any:
    """The ``tacoreader`` module; :class:`DatasetError` naming the install command if absent
    (the extra pins tacoreader<1.0: 2.x cannot read the published v1 files)."""
    return require(
        "tacoreader",
        "cloudsen12-taco",
        purpose="reading CloudSEN12 TACO files",
        error=DatasetError,
    )


def part_flavour(path: Path) -> str | None:
    """``l1c``, ``l2a`` or ``extra`` from a part's file name, None for other names."""
    found = PART_PATTERN.search(Path(path).name)
    return found.group(1).lower() if found else None


def check_part(path: Path) -> None:
    """Refuse a file that is not a whole TACO v1 part (magic bytes, table and collection
    inside the file), naming it; reads 42 bytes."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(HEADER_BYTES)
    if header[:2] != MAGIC:
        what = "a tortilla, not a TACO" if header[:2] == TORTILLA_MAGIC else "not a TACO v1 file"
        raise DatasetError(
            f"{path} is {what} (it does not start with the bytes 'WX'); CloudSEN12 parts are "
            "cloudsen12-l1c.NNNN.part.taco files: download it again"
        )
    if len(header) < HEADER_BYTES:
        raise DatasetError(f"{path} is truncated ({size} bytes, shorter than its header)")
    ends = {
        "metadata table": sum(
            int.from_bytes(header[a:b], "little") for a, b in ((2, 10), (10, 18))
        ),
        "collection": sum(int.from_bytes(header[a:b], "little") for a, b in ((26, 34), (34, 42))),
    }
    for what, end in ends.items():
        if end > size:
            raise DatasetError(
                f"{path} is truncated: its {what} ends at byte {end} but the file has {size} "
                "bytes; download the part again"
            )


def _taco_files(path: Path) -> list[Path]:
    """The ``.taco`` files ``path`` stands for: itself, or those in the folder."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.taco") if p.is_file())


def _looks_like_taco(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(2) == MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class TacoParts:
    """The parts of one download: image parts of each level and the extra parts."""

    images: Mapping[str, tuple[Path, ...]]
    extra: tuple[Path, ...]

    @classmethod
    def find(cls, path: Path) -> TacoParts:
        """Parts of ``path``: a folder of parts, or one part (extra parts beside it are used)."""
        files = _taco_files(path)
        folder = path.parent if path.is_file() else path
        if path.is_file() and part_flavour(path) == "extra":
            raise DatasetError(
                f"{path} is a cloudsen12-extra part: it holds no images. Give the "
                "cloudsen12-l1c (or -l2a) part(s), or the folder holding all parts"
            )
        images: dict[str, list[Path]] = {"L1C": [], "L2A": []}
        for file in files:
            flavour = part_flavour(file) or "l1c"  # a renamed single part: the L1C default
            if flavour != "extra":
                images[flavour.upper()].append(file)
        beside = sorted(folder.glob("*.taco")) if path.is_file() else files
        extra = tuple(f for f in beside if part_flavour(f) == "extra")
        if not any(images.values()):
            raise DatasetError(
                f"no CloudSEN12 image parts (cloudsen12-l1c.NNNN.part.taco, cloudsen12-l2a...) "
                f"in {path}; check the path"
            )
        return cls({k: tuple(v) for k, v in images.items() if v}, extra)


def _load_table(tacoreader: Any, parts: Sequence[Path]) -> Any:
    """The metadata table of ``parts`` (checked first), rows in part then file order."""
    import pandas as pd

    tables = []
    for part in parts:
        check_part(part)
        try:
            tables.append(tacoreader.load(str(part)))
        except (ValueError, OSError) as exc:
            raise DatasetError(
                f"{part}: not a readable TACO part ({exc}); download it again"
            ) from exc
    table = tables[0] if len(tables) == 1 else type(tables[0])(pd.concat(tables, ignore_index=True))
    return table.reset_index(drop=True)


def _resolve_layer(name: str) -> str:
    """Canonical extra layer name (item name without ``cloudmask_``), any spelling."""
    key = name.strip().lower().removeprefix("layer:").removeprefix("cloudmask_")
    return LAYER_ALIASES.get(key, key)


def _split_value(split: str) -> str:
    key = split.strip().lower()
    if key == "validation":
        key = "val"
    if key not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one or more of {', '.join(SPLITS)}")
    return SPLITS[key]


def _python_value(value: Any) -> Any:
    """A metadata cell as a plain Python value (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _band_names(descriptions: Sequence[str | None], level: str) -> tuple[str, ...]:
    """Band names of an image item: its descriptions when all are band names, else the
    catalogue order of ``level`` (its first bands when the item holds more)."""
    if descriptions and all(descriptions):
        try:
            return tuple(canonical_band_name(str(d)) for d in descriptions)
        except BandError:
            pass
    catalogue = LEVEL_BANDS[level]
    if len(descriptions) < len(catalogue):
        raise DatasetError(
            f"the {level} image item has {len(descriptions)} bands without band names; "
            f"CloudSEN12 stores {len(catalogue)} ({', '.join(catalogue)})"
        )
    return catalogue


class CloudSEN12Taco(CloudDataset):
    """Reader of the CloudSEN12 TACO parts (``cloudsen12-l1c.NNNN.part.taco`` ...).

    ``root``: a folder holding the parts, or one image part (the extra parts beside it are
    used for ``layers``). Filters on the metadata table: ``split`` (``train``, ``val``,
    ``test``, a list, or None for all), ``label`` (``label_type``: ``high``, ``scribble``,
    ``nolabel``, a list, or None), ``size`` (``real_proj_shape``: 509 or 2000, None for both),
    ``roi`` (``roi_id``, one or a list). ``level``: ``L1C`` or ``L2A``, or None for L1C when
    its parts are there. ``bands``: band names (any spelling) or None for all of the item.
    ``layers``: extra-part layers to return under ``sample["layers"]`` by short name
    (``unetmobv2_v2``, ``sensei_v2``, ``sen2cor``, ``lc10``, ``elevation``, ``vv``, ...;
    ``cloudscore_cs_v1`` is the raw score, ``cloudscore_cs_v1_cloud`` its cloud mask at
    :data:`CLOUDSCORE_CLEAR_THRESHOLD`). ``crop=True`` returns the real window only.

    Sample: ``image`` (C, H, W) float32 reflectance = DN x 0.0001; ``mask`` (H, W) uint8 raw
    label (99 unlabelled); ``mask_canonical`` (H, W) uint8, 255 off the window and where
    unlabelled; ``valid`` (H, W) bool; ``crs`` and ``transform`` from the GeoTIFF (the window's
    when cropped); ``meta``: ``id`` (``tortilla:id``), ``split``, ``level``, ``part`` and the
    patch's metadata columns (``roi_id``, ``label_type``, ``real_proj_shape``, cloud shares).
    """

    name: ClassVar[str] = "cloudsen12-taco"
    label_scheme: ClassVar[str] = "cloudsen12"

    @classmethod
    def stored_layer(cls, name: str) -> tuple[str, str]:
        """The extra-part mask ``name`` (``unetmobv2_v2``, ``sensei_v2``, ``cloudscore_cs``,
        ``sen2cor``, ``s2cloudless``, ``qa60``, ``unetmobv2_v1``) and its label scheme."""
        key = _resolve_layer(name)
        if key not in EXTRA_MASKS:
            raise DatasetError(
                f"unknown stored mask {name!r} of the CloudSEN12 extra part; use one of "
                f"{', '.join('layer:' + k for k in (*EXTRA_MASKS, *LAYER_ALIASES))}"
            )
        return key, EXTRA_MASKS[key]

    @classmethod
    def benchmark_options(cls, splits: Sequence[str], layers: Sequence[str]) -> dict[str, Any]:
        """The splits to score, and the stored masks to read with each sample."""
        options: dict[str, Any] = {"split": list(splits)}
        if layers:
            options["layers"] = [cls.stored_layer(name)[0] for name in layers]
        return options

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True for a TACO v1 file, or a folder holding ``cloudsen12-*.taco`` parts."""
        path = Path(path)
        if path.is_file():
            return path.suffix.lower() == ".taco" and _looks_like_taco(path)
        return path.is_dir() and any(part_flavour(p) for p in path.glob("*.taco"))

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[str] | None = "test",
        *,
        label: str | Sequence[str] | None = "high",
        size: int | Sequence[int] | None = None,
        roi: str | Sequence[str] | None = None,
        level: str | None = None,
        bands: str | Sequence[str] | None = None,
        layers: str | Sequence[str] = (),
        canonical: bool = True,
        crop: bool = False,
    ) -> None:
        self.root = require_path(root, "CloudSEN12 TACO part or folder")
        tacoreader = import_tacoreader()
        self.parts = TacoParts.find(self.root)
        self.level = self._choose_level(level)
        self.canonical, self.crop = canonical, crop
        self.layer_names = tuple(_resolve_layer(n) for n in as_names(layers))
        table = _load_table(tacoreader, self.parts.images[self.level])
        self._table = self._filter(table, split, label, size, roi)
        self._extra = self._extra_rows(tacoreader) if self.layer_names else None
        self._bands_requested = canonical_band_names(bands) if bands is not None else None
        self._item_bands: tuple[str, ...] | None = None

    # -- construction helpers -------------------------------------------------------------
    def _choose_level(self, level: str | None) -> str:
        if level is None:
            return "L1C" if "L1C" in self.parts.images else "L2A"
        chosen = level.strip().upper()
        if chosen not in LEVELS:
            raise DatasetError(f"unknown level {level!r}; use 'L1C' or 'L2A'")
        if chosen not in self.parts.images:
            raise DatasetError(
                f"no cloudsen12-{chosen.lower()} parts in {self.root}; found "
                f"{', '.join(self.parts.images)}. Download them or choose -O level="
                f"{next(iter(self.parts.images))}"
            )
        return chosen

    @staticmethod
    def _require_column(table: Any, column: str) -> None:
        if column not in table.columns:
            raise DatasetError(
                f"the TACO metadata has no column {column!r} to filter on; it has "
                f"{', '.join(map(str, table.columns))}"
            )

    def _filter(
        self,
        table: Any,
        split: str | Sequence[str] | None,
        label: str | Sequence[str] | None,
        size: int | Sequence[int] | None,
        roi: str | Sequence[str] | None,
    ) -> Any:
        """Rows of ``table`` that pass every filter; :class:`DatasetError` when none does."""
        keep = np.ones(len(table), dtype=bool)
        filters: list[tuple[str, list[Any]]] = []
        if split is not None:
            filters.append((SPLIT_COLUMN, [_split_value(s) for s in as_names(split)]))
        if label is not None:
            labels = [str(v).strip().lower() for v in as_names(label)]
            unknown = [v for v in labels if v not in LABEL_TYPES]
            if unknown:
                raise DatasetError(f"unknown label type(s) {unknown}; use {', '.join(LABEL_TYPES)}")
            filters.append(("label_type", labels))
        if size is not None:
            sizes = [size] if isinstance(size, int | str) else list(size)
            filters.append(("real_proj_shape", [int(s) for s in sizes]))
        if roi is not None:
            filters.append(("roi_id", [str(r) for r in as_names(roi)]))
        for column, values in filters:
            self._require_column(table, column)
            keep &= table[column].isin(values).to_numpy()
        if not keep.any():
            asked = "; ".join(f"{c} in {v}" for c, v in filters)
            raise DatasetError(
                f"no patch of {self.root} has {asked} (of {len(table)} {self.level} patches); "
                "relax -O split/label/size/roi"
            )
        return table[keep].reset_index(drop=True)

    def _extra_rows(self, tacoreader: Any) -> Any:
        """The extra table's rows in the order of the selected patches (by ``tortilla:id``)."""
        if not self.parts.extra:
            raise DatasetError(
                f"layers {', '.join(self.layer_names)} are in the cloudsen12-extra parts, and "
                f"there are none beside {self.root}; download cloudsen12-extra.NNNN.part.taco"
            )
        extra = _load_table(tacoreader, self.parts.extra)
        position = {str(k): i for i, k in enumerate(extra[ID_COLUMN])}
        ids = [str(k) for k in self._table[ID_COLUMN]]
        missing = [k for k in ids if k not in position]
        if missing:
            raise DatasetError(
                f"the extra parts lack patch(es) {', '.join(missing[:5])}; download every "
                "cloudsen12-extra part"
            )
        return extra.iloc[[position[k] for k in ids]].reset_index(drop=True)

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._table)

    def _items(self, table: Any, index: int) -> dict[str, str]:
        """Item name -> GDAL path of the patch ``index`` of ``table`` (a nested tortilla)."""
        try:
            items = table.read(index)
        except (ValueError, OSError) as exc:
            raise DatasetError(f"patch {index} of {self.root} cannot be read ({exc})") from exc
        return {
            str(k): str(p) for k, p in zip(items[ID_COLUMN], items["internal:subfile"], strict=True)
        }

    def _image_item(self, items: Mapping[str, str]) -> str:
        name = f"s2{self.level.lower()}"
        return items.get(name, next(iter(items.values())))

    def _label_item(self, items: Mapping[str, str]) -> str:
        if LABEL_ITEM in items:
            return items[LABEL_ITEM]
        paths = list(items.values())
        if len(paths) < 2:
            raise DatasetError(f"a patch of {self.root} has no label item ({LABEL_ITEM!r})")
        return paths[1]

    def _window(self, real: int, shape: tuple[int, int]) -> tuple[slice, slice]:
        """Rows and columns of the real data on a canvas of ``shape`` (left/bottom padding)."""
        height, width = shape
        real = min(real, height, width)
        return slice(0, real), slice(width - real, width)

    def _real_size(self, row: Any, shape: tuple[int, int]) -> int:
        value = row.get("real_proj_shape")
        return int(value) if value is not None and value == value else min(shape)

    def _read_image(self, path: str) -> tuple[np.ndarray, tuple[str, ...], Any, Any]:
        """(C, H, W) DN of the chosen bands, their names, CRS and transform."""
        import rasterio

        with rasterio.open(path) as src:
            names = _band_names(src.descriptions, self.level)
            wanted = self._bands_requested or names
            missing = [b for b in wanted if b not in names]
            if missing:
                raise DatasetError(
                    f"band(s) {', '.join(missing)} are not in the {self.level} image item, "
                    f"which has {', '.join(names)}"
                )
            data = src.read([names.index(b) + 1 for b in wanted])
            return data, tuple(wanted), src.crs, src.transform

    @staticmethod
    def _read_band(path: str) -> np.ndarray:
        import rasterio

        with rasterio.open(path) as src:
            return np.asarray(src.read(1))

    def _meta(self, row: Any, index: int) -> dict[str, Any]:
        meta = {
            str(k): _python_value(v)
            for k, v in row.items()
            if k not in _STORAGE_COLUMNS and not isinstance(v, list | tuple | np.ndarray | bytes)
        }
        meta.pop(ID_COLUMN, None)
        split = meta.pop(SPLIT_COLUMN, None)
        meta["split"] = {v: k for k, v in SPLITS.items()}.get(str(split), split)
        meta["id"] = str(row[ID_COLUMN])
        meta["index"] = index
        meta["level"] = self.level
        part = re.match(r"/vsisubfile/\d+_\d+,(.+)", str(row.get("internal:subfile", "")))
        meta["part"] = Path(part.group(1)).name if part else None
        return meta

    def _layer(self, items: Mapping[str, str], name: str) -> np.ndarray:
        """One extra layer, as stored (a CloudScore+ ``_cloud`` layer: its mask, 0/1/255)."""
        base = name.removesuffix(CLOUD_SUFFIX)
        item = next((items[k] for k in (base, f"cloudmask_{base}") if k in items), None)
        if item is None:
            raise DatasetError(
                f"the extra part has no layer {name!r}; it has "
                f"{', '.join(k.removeprefix('cloudmask_') for k in items)}"
            )
        values = self._read_band(item)
        if name == base:
            return values
        return cloudscore_mask(values)

    def __getitem__(self, index: int) -> Sample:
        position = self._check_index(index)
        row = self._table.iloc[position]
        items = self._items(self._table, position)
        dn, bands, crs, transform = self._read_image(self._image_item(items))
        mask = self._read_band(self._label_item(items)).astype(np.uint8)
        rows, cols = self._window(self._real_size(row, mask.shape), mask.shape)
        inside = np.zeros(mask.shape, dtype=bool)
        inside[rows, cols] = True
        canonical = to_canonical(mask, self.label_scheme, unknown="nodata")
        canonical[~inside] = NODATA
        layers = {}
        if self._extra is not None:
            extra_items = self._items(self._extra, position)
            layers = {n: self._layer(extra_items, n) for n in self.layer_names}
        image = dn.astype(np.float32) * np.float32(REFLECTANCE_SCALE)
        if self.crop:
            from affine import Affine

            image, mask, canonical = image[:, rows, cols], mask[rows, cols], canonical[rows, cols]
            layers = {k: v[rows, cols] for k, v in layers.items()}
            transform = transform * Affine.translation(cols.start, rows.start)
        sample: Sample = {
            "image": image,
            "mask": mask,
            "valid": canonical != NODATA,
            "bands": bands,
            "crs": crs,
            "transform": transform,
            "meta": self._meta(row, position),
        }
        if self.canonical:
            sample["mask_canonical"] = canonical
        if layers:
            sample["layers"] = layers
        return sample

    def summary(self) -> dict[str, Any]:
        table = self._table

        def counts(column: str) -> dict[str, int]:
            if column not in table.columns:
                return {}
            return {str(k): int(v) for k, v in table[column].value_counts().sort_index().items()}

        return super().summary() | {
            "root": str(self.root),
            "level": self.level,
            "parts": [p.name for p in self.parts.images[self.level]],
            "extra parts": [p.name for p in self.parts.extra],
            "splits": counts(SPLIT_COLUMN),
            "label types": counts("label_type"),
            "patch sizes": counts("real_proj_shape"),
            "rois": int(table["roi_id"].nunique()) if "roi_id" in table.columns else None,
            "label scheme": self.label_scheme,
            "stored masks": [f"layer:{k}" for k in EXTRA_MASKS],
        }


def cloudscore_mask(score: np.ndarray) -> np.ndarray:
    """(H, W) uint8 cloud mask of a CloudScore+ score (1 clear ... 0 cloudy): 1 cloud where
    the score is below :data:`CLOUDSCORE_CLEAR_THRESHOLD`, 0 clear, 255 where it is missing
    (NaN). Integer scores are read as percent."""
    values = score.astype(np.float64)
    missing = ~np.isfinite(values)
    if score.dtype.kind in "iu":
        values = values / 100.0
    out = np.where(values < CLOUDSCORE_CLEAR_THRESHOLD, 1, 0).astype(np.uint8)
    out[missing] = NODATA
    return out
