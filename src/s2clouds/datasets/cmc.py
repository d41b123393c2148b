"""The Sentinel-2 Cloud Mask Catalogue (Francis et al. 2020): 513 subscenes at 20 m.

Layout (from the catalogue's release)::

    <root>/classification_tags.csv        one row per subscene: scene, shadows_marked, tags
    <root>/subscenes/<scene>.npy          (H, W, 13) float32 TOA reflectance (H = W = 1022)
    <root>/masks/<scene>.npy              (H, W, 3) bool one-hot CLEAR, CLOUD, CLOUD_SHADOW
    <root>/shapefiles/                    optional, footprints on the source product (unused)

Subscene bands are B01-B08, B8A, B09-B12 (all 13 L1C bands in catalogue order). The CSV's tag
columns (surface type, cloud type, height, thickness, extent) are read generically: every
column whose values are 0/1 (or true/false) is a tag, so the reader follows the file rather
than a fixed list; :data:`TAG_GROUPS` lists the columns of the published file. Other spellings
of a published column (``Forest / Jungle``, ``open water``, ``low cloud``, ``Ice-Clouds``) are
renamed to it (:func:`published_column`); columns that are neither published tags nor the
id/info columns are reported (``unknown_columns``, a warning), never refused.

The subscenes are on a 20 m grid: samples carry ``meta["resolution"] = 20.0`` so models run
at that pixel size.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import L1C_BANDS, band_indices, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.errors import DatasetError
from s2clouds.io.limits import check_regular_file
from s2clouds.labels import NODATA, decode_one_hot, to_canonical

TAGS_FILE = "classification_tags.csv"
SUBSCENES_DIR = "subscenes"
MASKS_DIR = "masks"
#: band order of the subscene arrays' last axis
CMC_BANDS: tuple[str, ...] = L1C_BANDS
#: one-hot channel order of the mask arrays
MASK_CLASSES = ("CLEAR", "CLOUD", "CLOUD_SHADOW")
#: tag columns of the published classification_tags.csv, by the card's five categories
TAG_GROUPS: dict[str, tuple[str, ...]] = {
    "surface type": (
        "forest/jungle",
        "snow/ice",
        "agricultural",
        "urban/developed",
        "coastal",
        "hills/mountains",
        "desert/barren",
        "shrublands/plains",
        "wetland/bog/marsh",
        "open_water",
        "enclosed_water",
    ),
    "cloud type": (
        "cumulus",
        "cumulonimbus",
        "altocumulus/stratocumulus",
        "cirrus",
        "haze/fog",
        "ice_clouds",
        "contrails",
    ),
    "cloud height": ("low", "high"),
    "cloud thickness": ("thin", "thick"),
    "cloud extent": ("isolated", "extended"),
}
SCENE_COLUMN = "scene"
SHADOWS_COLUMN = "shadows_marked"
#: non-tag text columns kept in ``meta`` as they are (``dataset``: the annotation batch)
INFO_COLUMNS = ("dataset",)
_IGNORED_COLUMNS = ("", "index", "unnamed: 0")
_BOOLEAN_TEXT = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False}
_PUBLISHED_TAGS = frozenset(t for tags in TAG_GROUPS.values() for t in tags)
#: pixel size of the subscenes and masks, metres
RESOLUTION_M = 20.0
#: columns that must hold 0/1 in every row: the published tags and ``shadows_marked``
_CHECKED_COLUMNS = _PUBLISHED_TAGS | {SHADOWS_COLUMN}
#: scene ids are file names (``<scene>.npy``), never paths
SCENE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class SceneRecord:
    """One CSV row: scene id, whether shadows were annotated, boolean tags, other text."""

    scene: str
    shadows_marked: bool
    tags: Mapping[str, bool]
    info: Mapping[str, str] = field(default_factory=dict)


def _as_bool(text: str) -> bool | None:
    return _BOOLEAN_TEXT.get(text.strip().lower())


def _parse_row(
    row: Mapping[str, str], tag_columns: Sequence[str], path: Path, line: int
) -> SceneRecord:
    """One checked row: a safe scene id, every published tag and ``shadows_marked`` 0/1."""
    where = f"{path} line {line}"
    if None in row or any(value is None for value in row.values()):
        raise DatasetError(
            f"{where} has {'more' if None in row else 'fewer'} values than the header has "
            "columns; repair or remove that row"
        )
    scene = (row.get(SCENE_COLUMN) or "").strip()
    if not SCENE_ID.fullmatch(scene) or ".." in scene:
        raise DatasetError(
            f"{where} has the scene id {scene!r}; ids are file names (letters, digits, '_', "
            "'-', '.'), never paths. Repair or remove that row"
        )
    flags = {c: _as_bool(row[c]) for c in (*tag_columns, SHADOWS_COLUMN) if c in row}
    bad = {c: row[c] for c, flag in flags.items() if flag is None and c in _CHECKED_COLUMNS}
    if bad:
        raise DatasetError(
            f"{where}: {', '.join(f'{c}={v!r}' for c, v in bad.items())} must be 0 or 1; "
            "repair that row"
        )
    tags = {c: bool(flags[c]) for c in tag_columns}
    info = {c: row[c] for c in INFO_COLUMNS if c in row}
    return SceneRecord(scene, bool(flags.get(SHADOWS_COLUMN)), tags, info)


def _spelling_key(name: str) -> str:
    """``Forest / Jungle`` and ``forest/jungle`` -> ``forest_jungle``; ``low cloud`` -> ``low``."""
    key = re.sub(r"[\s/_-]+", "_", name.strip().lower()).strip("_")
    return re.sub(r"_clouds?$", "", key) or key


_PUBLISHED_BY_KEY = {_spelling_key(t): t for t in _PUBLISHED_TAGS | {SHADOWS_COLUMN, SCENE_COLUMN}}


def published_column(name: str) -> str:
    """The published column another spelling names (case, spaces, ``-``, ``/``, a ``cloud``
    suffix ignored), or ``name`` unchanged when it names none."""
    return _PUBLISHED_BY_KEY.get(_spelling_key(name), name)


def tag_group(column: str) -> str:
    """The card's category of a tag column (``surface type`` ...), or ``other``."""
    published = published_column(column)
    return next((g for g, tags in TAG_GROUPS.items() if published in tags), "other")


def unknown_columns(columns: Sequence[str]) -> list[str]:
    """Columns (already renamed by :func:`published_column`) that the published file lacks."""
    known = {SCENE_COLUMN, SHADOWS_COLUMN, *INFO_COLUMNS, *_PUBLISHED_TAGS}
    return [c for c in columns if c not in known and c.strip().lower() not in _IGNORED_COLUMNS]


def _tag_columns(rows: list[dict[str, str]], columns: Sequence[str]) -> list[str]:
    """The published tag columns present, and other columns (not id/info) whose every
    value reads as a boolean."""
    skip = {SCENE_COLUMN, SHADOWS_COLUMN, *INFO_COLUMNS, *_IGNORED_COLUMNS}
    return [
        c
        for c in columns
        if c in _PUBLISHED_TAGS
        or (c.strip().lower() not in skip and all(_as_bool(r[c] or "") is not None for r in rows))
    ]


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header (renamed to published spellings) and rows of the CSV."""
    check_regular_file(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [published_column(c) for c in next(reader, [])]
            lines = [line for line in reader if line]  # blank lines skipped, as DictReader
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path} ({exc}); give the catalogue's UTF-8 CSV") from exc
    if len(set(header)) != len(header):
        twice = sorted({c for c in header if header.count(c) > 1})
        raise DatasetError(f"{path} names the columns {', '.join(twice)} twice; keep one of each")
    return header, [_as_dict(header, line) for line in lines]


def _as_dict(header: list[str], line: list[str]) -> dict[str, Any]:
    """One CSV line as ``csv.DictReader`` gives it (extra values under None, missing None)."""
    row: dict[Any, Any] = dict(zip(header, line, strict=False))
    row.update({c: None for c in header[len(line) :]})
    if len(line) > len(header):
        row[None] = line[len(header) :]
    return row


def read_columns(path: Path) -> list[str]:
    """The CSV's column names, renamed to the published spellings."""
    return _read_rows(path)[0]


def read_tags(path: Path) -> list[SceneRecord]:
    """Parse ``classification_tags.csv`` into one :class:`SceneRecord` per row.

    Column names are renamed to the published spellings (:func:`published_column`). Raises
    :class:`DatasetError` naming the line for a file that is not UTF-8 text, a row with too
    few or too many values, a scene id that is not a plain file name (``../x``),
    a published tag or ``shadows_marked`` that is not 0/1, and a scene listed twice.
    """
    columns, rows = _read_rows(path)
    if SCENE_COLUMN not in columns:
        raise DatasetError(
            f"{path} has no '{SCENE_COLUMN}' column (it has {', '.join(columns)}); "
            "is it the catalogue's classification_tags.csv?"
        )
    tag_columns = _tag_columns(rows, columns)
    records = [_parse_row(r, tag_columns, path, n + 2) for n, r in enumerate(rows)]
    seen: dict[str, int] = {}
    for line, record in enumerate(records, start=2):
        if record.scene in seen:
            raise DatasetError(
                f"{path} lists scene {record.scene} twice (lines {seen[record.scene]} and "
                f"{line}); keep one row per scene"
            )
        seen[record.scene] = line
    return records


def _tag_matches(key: str, column: str) -> bool:
    """``forest`` matches ``forest/jungle``; ``open_water`` matches ``open_water``."""
    key, column = key.strip().lower(), column.strip().lower()
    return key == column or key in column.split("/")


def resolve_tag(key: str, columns: Sequence[str]) -> str:
    """The one tag column ``key`` names (exactly, or as one of its ``/`` parts)."""
    exact = [c for c in columns if c.strip().lower() == key.strip().lower()]
    matches = exact or [c for c in columns if _tag_matches(key, c)]
    if len(matches) != 1:
        problem = "matches several tags" if matches else "is not a tag"
        raise DatasetError(f"{key!r} {problem} of the catalogue; use one of: {', '.join(columns)}")
    return matches[0]


def parse_tag_filter(tags: Mapping[str, bool] | str | Sequence[str]) -> dict[str, bool]:
    """``{"forest": True}`` as it is; names (``"forest,!thin"`` or a list) -> True, and False
    for names starting with ``!`` (as ``-O tags=forest,!thin`` gives them)."""
    if isinstance(tags, Mapping):
        return {str(k): bool(v) for k, v in tags.items()}
    names = tags.split(",") if isinstance(tags, str) else list(tags)
    parsed = {}
    for name in (str(n).strip() for n in names):
        if name.lstrip("!"):
            parsed[name.lstrip("!")] = not name.startswith("!")
    return parsed


def filter_records(records: Sequence[SceneRecord], tags: Mapping[str, bool]) -> list[SceneRecord]:
    """Records whose tags equal every ``tags`` value (keys resolved by :func:`resolve_tag`).

    ``shadows_marked`` may be used as a key too.
    """
    columns = sorted({c for r in records for c in r.tags} | {SHADOWS_COLUMN})
    wanted = {resolve_tag(k, columns): bool(v) for k, v in tags.items()}

    def value(record: SceneRecord, column: str) -> bool:
        return record.shadows_marked if column == SHADOWS_COLUMN else record.tags[column]

    return [r for r in records if all(value(r, c) == v for c, v in wanted.items())]


def _keep_existing(records: Sequence[SceneRecord], root: Path, strict: bool) -> list[SceneRecord]:
    """Refuse (strict) or skip with a warning the rows whose subscene or mask file is missing."""
    kept = []
    for record in records:
        missing = [
            p
            for p in (
                root / SUBSCENES_DIR / f"{record.scene}.npy",
                root / MASKS_DIR / f"{record.scene}.npy",
            )
            if not p.is_file()
        ]
        if not missing:
            kept.append(record)
            continue
        message = f"{TAGS_FILE} lists {record.scene} but {missing[0]} does not exist"
        if strict:
            raise DatasetError(
                f"{message}; restore the file or pass strict=False to skip such rows"
            )
        warnings.warn(f"{message}; skipping it", stacklevel=3)
    return kept


class CloudMaskCatalogue(CloudDataset):
    """Reader of the Sentinel-2 Cloud Mask Catalogue.

    ``bands``: any spelling, default all 13. ``tags``: keep only scenes whose tags equal the
    given values, e.g. ``{"forest": True, "thin": False}`` or ``"forest,!thin"`` (a key may be
    a whole column name or one of its ``/`` parts; ``shadows_marked`` works too).
    ``strict=False`` skips CSV rows whose subscene or mask file is missing, with a warning,
    instead of raising :class:`DatasetError`.

    Sample: ``image`` (C, H, W) float32 TOA reflectance (transposed from the stored HWC,
    read through ``np.load(mmap_mode='r')``); ``mask`` (H, W) uint8 in the ``cmc`` scheme
    (0 clear, 1 cloud, 2 cloud shadow, 255 no one-hot channel set); ``mask_canonical``
    (H, W) uint8; ``valid`` where a class is set; ``meta``: ``scene``, ``shadows_marked``,
    ``resolution`` (20.0 m), ``tags`` (published column name -> bool) and the CSV's ``dataset``
    column when present.

    In scenes with ``shadows_marked`` False the shadows were not annotated: the mask is
    returned as stored (shadow pixels then appear as clear), so shadow metrics should skip
    those scenes using ``meta["shadows_marked"]``.
    """

    name: ClassVar[str] = "cmc"
    label_scheme: ClassVar[str] = "cmc"
    protocol: ClassVar[str] = "cmc"

    def __init__(
        self,
        root: str | Path,
        *,
        bands: str | Sequence[str] | None = None,
        tags: Mapping[str, bool] | str | Sequence[str] | None = None,
        canonical: bool = True,
        strict: bool = True,
    ) -> None:
        self.root = require_path(root, "Cloud Mask Catalogue root folder")
        csv_path = require_path(self.root / TAGS_FILE, f"the catalogue's {TAGS_FILE}")
        records = read_tags(csv_path)
        self.unknown_columns = unknown_columns(read_columns(csv_path))
        if self.unknown_columns:
            warnings.warn(
                f"{csv_path} has columns the published catalogue lacks: "
                f"{', '.join(self.unknown_columns)}; 0/1 columns are used as tags, others ignored",
                stacklevel=2,
            )
        tag_filter = parse_tag_filter(tags or {})
        if tag_filter:
            records = filter_records(records, tag_filter)
        self.records = _keep_existing(records, self.root, strict)
        self.bands = canonical_band_names(bands) if bands is not None else CMC_BANDS
        self._band_positions = band_indices(CMC_BANDS, self.bands)
        self.canonical = canonical
        self.tag_filter = tag_filter

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` has ``subscenes/`` and ``masks/`` folders or the tags CSV."""
        path = Path(path)
        has_folders = (path / SUBSCENES_DIR).is_dir() and (path / MASKS_DIR).is_dir()
        return has_folders or (path / TAGS_FILE).is_file()

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, folder: str, scene: str) -> np.ndarray:
        path = self.root / folder / f"{scene}.npy"
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
            raise DatasetError(f"cannot read {path}: {exc}; download the file again") from exc

    def _read_image(self, scene: str) -> np.ndarray:
        """(C, H, W) float32 reflectance of the selected bands."""
        stored = self._load(SUBSCENES_DIR, scene)
        if stored.ndim != 3 or stored.shape[2] != len(CMC_BANDS):
            raise DatasetError(
                f"{self.root / SUBSCENES_DIR / scene}.npy has shape {stored.shape}; expected "
                f"(H, W, {len(CMC_BANDS)}). Download the file again"
            )
        selected = stored[:, :, self._band_positions]
        return np.ascontiguousarray(np.moveaxis(selected, -1, 0), dtype=np.float32)

    def _read_mask(self, scene: str, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 cmc labels decoded from the one-hot mask."""
        onehot = self._load(MASKS_DIR, scene)
        if onehot.shape != (*shape, len(MASK_CLASSES)):
            raise DatasetError(
                f"{self.root / MASKS_DIR / scene}.npy has shape {onehot.shape}; expected "
                f"{(*shape, len(MASK_CLASSES))} to match its subscene. Download it again"
            )
        return decode_one_hot(onehot, axis=-1)

    def __getitem__(self, index: int) -> Sample:
        record = self.records[self._check_index(index)]
        image = self._read_image(record.scene)
        mask = self._read_mask(record.scene, image.shape[1:])
        sample: Sample = {
            "image": image,
            "mask": mask,
            "valid": mask != NODATA,
            "bands": self.bands,
            "crs": None,
            "transform": None,
            "meta": {
                "scene": record.scene,
                "resolution": RESOLUTION_M,
                "shadows_marked": record.shadows_marked,
                "tags": dict(record.tags),
                **record.info,
            },
        }
        if self.canonical:
            sample["mask_canonical"] = to_canonical(mask, self.label_scheme)
        return sample

    def tag_counts(self) -> dict[str, int]:
        """Number of selected scenes for which each tag is true."""
        columns = sorted({c for r in self.records for c in r.tags})
        return {c: sum(r.tags[c] for r in self.records) for c in columns}

    def summary(self) -> dict[str, Any]:
        shadows = sum(r.shadows_marked for r in self.records)
        return super().summary() | {
            "root": str(self.root),
            "bands": list(self.bands),
            "shadows marked": f"{shadows} of {len(self.records)} scenes",
            "tag filter": self.tag_filter or None,
            "scenes per tag": {k: v for k, v in self.tag_counts().items() if v},
            "unknown columns": self.unknown_columns or None,
        }
