"""CloudSEN12 high-quality release: raw ``np.memmap`` files of 512 x 512 patches.

Layout (from the dataset card)::

    <root>/{train,val,test}/<PREFIX><NAME>.dat     raw C-order arrays of shape (N, 512, 512)

``PREFIX`` is ``L1C_``, ``L2A_``, ``S1_``, ``EXTRA_`` or ``LABEL_``; the card's own example
names label files without the prefix (``train/manual_hq.dat``), so both spellings are read.
Band names may be written ``B04`` or ``B4`` (and ``B8A``). Dtypes and scale factors are those
of the card's table, encoded in :data:`LAYERS`. A split folder may hold any subset of the
layers; :meth:`CloudSEN12.available_layers` says which.

Padding: the card states that true data is held "from pixel (1,1) to (509,509)" and that
three pixels were added to reach 512; its drawing shows one blank row on top, one blank column
on the left and two blank rows/columns at the bottom/right. We read that as 0-based rows and
columns 1..509 inclusive, i.e. the slice ``1:510`` (1 + 509 + 2 = 512). Pixels outside it are
``valid=False`` and 255 in ``mask_canonical``; ``crop=True`` returns only the 509 x 509
interior.

Patch counts and stored dtypes (decided from file sizes, nothing else is recorded on disk):

* ``N`` of a split is the patch count of the layers a reader asks for (bands, label, extra
  layers; :func:`scan_split` without a request uses the band files, else every file). Those
  must all hold the same whole number of patches, else :class:`DatasetError`. Layer files
  nobody asked for whose size does not fit ``N`` are left out with a warning.
* QA60: the card says int8, which cannot hold its flag values 1024 and 2048, so a QA60 file
  may be int16. It is read as int8 (the card) when it holds ``N`` int8 patches and as int16
  when it holds ``N`` int16 patches (``N * 512 * 512 * 2`` bytes). When ``N`` is unknown (only
  QA60 in the folder) the card's int8 is preferred. An int8 QA60 file stores the flags
  divided by 1024 (1 opaque, 2 cirrus, 3 both): they are read back as 1024, 2048 and 3072
  (``mask`` int16, see :func:`widen_narrow_label`). An int8 QA60 patch whose interior holds
  other values is refused with :class:`DatasetError` when read.

Patch metadata: a split folder may hold the release's ``metadata.csv`` (one row per patch, in
patch order; columns such as ``roi_id``, ``s2_id``, ``land_cover``, ``label_type``,
``cloud_coverage``, ``difficulty``, ``proj_epsg``, ``proj_transform``). Its columns go into
each sample's ``meta`` (numbers as numbers, empty cells as None); ``roi=`` keeps the patches
of some ROIs. A table whose row count differs from the split's patch count is refused.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import L1C_BANDS, L2A_BANDS, canonical_band_name, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, as_names, require_path
from s2clouds.errors import BandError, DatasetError
from s2clouds.labels import NODATA, get_scheme, to_canonical

PATCH_SIZE = 512
#: 0-based slice of the rows and columns that hold real data (see the module docstring)
INTERIOR = slice(1, 510)
SPLITS = ("train", "val", "test")
LEVELS = ("L1C", "L2A")
GROUPS = ("L1C", "L2A", "S1", "EXTRA", "LABEL")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the card's table: file prefix (group), name, stored dtype, scale factor.

    Physical value = stored value * ``scale``. ``scheme`` is the label scheme of a ``LABEL``
    layer (see ``s2clouds.labels``), None for other layers.
    """

    group: str
    name: str
    dtype: str
    scale: float
    scheme: str | None = None
    #: further dtypes the file may really be stored in (see the module docstring)
    alt_dtypes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Canonical layer name, e.g. ``L1C_B04`` or ``LABEL_manual_hq``."""
        return f"{self.group}_{self.name}"

    @property
    def stored_dtypes(self) -> tuple[str, ...]:
        """The card's dtype, then the alternatives, in order of preference."""
        return (self.dtype, *self.alt_dtypes)


# Rows of the card's table that are not the 13/12 spectral bands: (group, name, dtype, scale, scheme)
_OTHER_LAYERS: tuple[tuple[str, str, str, float, str | None], ...] = (
    ("L2A", "AOT", "int16", 0.001, None),
    ("L2A", "WVP", "int16", 0.001, None),
    ("L2A", "TCI_R", "int16", 1.0, None),
    ("L2A", "TCI_G", "int16", 1.0, None),
    ("L2A", "TCI_B", "int16", 1.0, None),
    ("S1", "VV", "float32", 1.0, None),
    ("S1", "VH", "float32", 1.0, None),
    ("S1", "angle", "float32", 1.0, None),
    ("EXTRA", "CDI", "int16", 0.0001, None),
    ("EXTRA", "Shwdirection", "int16", 0.01, None),
    ("EXTRA", "elevation", "int16", 1.0, None),
    ("EXTRA", "ocurrence", "int16", 1.0, None),
    ("EXTRA", "LC100", "int16", 1.0, None),
    ("EXTRA", "LC10", "int16", 1.0, None),
    ("LABEL", "fmask", "int16", 1.0, "fmask"),
    ("LABEL", "s2cloudless", "int8", 1.0, "s2cloudless"),
    ("LABEL", "sen2cor", "int8", 1.0, "sen2cor"),
    ("LABEL", "cd_fcnn_rgbi", "int8", 1.0, "cd_fcnn"),
    ("LABEL", "cd_fcnn_rgbi_swir", "int8", 1.0, "cd_fcnn"),
    ("LABEL", "kappamask_L1C", "int8", 1.0, "kappamask"),
    ("LABEL", "kappamask_L2A", "int8", 1.0, "kappamask"),
    ("LABEL", "manual_hq", "int8", 1.0, "cloudsen12"),
    ("LABEL", "manual_sc", "int8", 1.0, "cloudsen12"),
)
REFLECTANCE_SCALE = 0.0001
#: every layer of the release, keyed by canonical layer name (``L1C_B04``, ``LABEL_manual_hq``)
LAYERS: dict[str, LayerSpec] = {
    spec.key: spec
    for spec in (
        *(LayerSpec("L1C", b, "int16", REFLECTANCE_SCALE) for b in L1C_BANDS),
        *(LayerSpec("L2A", b, "int16", REFLECTANCE_SCALE) for b in L2A_BANDS),
        *(LayerSpec(*row) for row in _OTHER_LAYERS),
        # the card says int8, which cannot hold the flags 1024 and 2048: int16 files exist too
        LayerSpec("LABEL", "QA60", "int8", 1.0, "qa60", alt_dtypes=("int16",)),
    )
}
#: spectral bands of each processing level (B10 is L1C only)
LEVEL_BANDS: dict[str, tuple[str, ...]] = {"L1C": L1C_BANDS, "L2A": L2A_BANDS}
_BY_GROUP_AND_NAME = {(s.group, s.name.lower()): s for s in LAYERS.values()}
LABEL_LAYERS: tuple[str, ...] = tuple(s.name for s in LAYERS.values() if s.group == "LABEL")


def parse_layer_filename(filename: str | Path) -> LayerSpec | None:
    """The :class:`LayerSpec` a ``.dat`` file name stands for, or None if it is not one.

    Accepts ``L1C_B04.dat``, ``L1C_B4.dat``, ``L2A_B8A.dat``, ``LABEL_manual_hq.dat`` and the
    card's unprefixed label names such as ``manual_hq.dat``.
    """
    stem = Path(filename).stem
    head, _, rest = stem.partition("_")
    group = head.upper() if rest and head.upper() in GROUPS else "LABEL"
    name = rest if group != "LABEL" or head.upper() == "LABEL" else stem
    if group in LEVELS:
        with contextlib.suppress(BandError):  # AOT, WVP, TCI_R are not spectral bands
            name = canonical_band_name(name)
    return _BY_GROUP_AND_NAME.get((group, name.lower()))


@dataclass(frozen=True)
class SplitFiles:
    """The usable layer files of one split folder, their stored dtypes and patch count ``n``."""

    name: str
    folder: Path
    files: Mapping[str, Path]
    dtypes: Mapping[str, str]
    n: int


def _layer_files(folder: Path) -> dict[str, Path]:
    """Layer key -> file for every recognised ``.dat`` in ``folder``; refuse two spellings."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.dat")):
        spec = parse_layer_filename(path.name)
        if spec is None:
            warnings.warn(f"ignoring {path}: not a CloudSEN12 layer name", stacklevel=3)
            continue
        if spec.key in found:
            raise DatasetError(
                f"{found[spec.key]} and {path} are both layer {spec.key}; remove one of them"
            )
        found[spec.key] = path
    if not found:
        raise DatasetError(
            f"{folder} holds no CloudSEN12 layer files (e.g. L1C_B04.dat, manual_hq.dat); "
            "check the dataset root"
        )
    return found


def _require_layers(folder: Path, files: Mapping[str, Path], keys: Iterable[str]) -> None:
    """Refuse a requested layer that ``folder`` lacks, naming the expected file."""
    for key in keys:
        if key not in files:
            spec = LAYERS[key]
            alt = f" (or {spec.name}.dat)" if spec.group == "LABEL" else ""
            raise DatasetError(
                f"missing file {folder / f'{key}.dat'}{alt}; this split has "
                f"{', '.join(sorted(files))}. Download that layer or choose another band/label"
            )


def _patch_bytes(dtype: str) -> int:
    """Bytes of one 512 x 512 patch stored as ``dtype``."""
    return PATCH_SIZE * PATCH_SIZE * np.dtype(dtype).itemsize


def _patch_count(path: Path, dtype: str) -> int | None:
    """N of a raw (N, 512, 512) ``dtype`` file from its size; None when not a whole number."""
    size = path.stat().st_size
    return None if size % _patch_bytes(dtype) else size // _patch_bytes(dtype)


def _count_samples(path: Path, dtype: str) -> int:
    """N of a raw (N, 512, 512) file, from its size; refuse sizes that are not a multiple."""
    n = _patch_count(path, dtype)
    if n is None:
        raise DatasetError(
            f"{path} has {path.stat().st_size} bytes, not a multiple of {_patch_bytes(dtype)} "
            f"(one {PATCH_SIZE}x{PATCH_SIZE} {dtype} patch); the file is truncated or "
            "not a CloudSEN12 layer: download it again"
        )
    return n


def _stored_dtype(path: Path, spec: LayerSpec, n: int | None) -> str | None:
    """The first of the layer's dtypes whose patches fill ``path`` exactly ``n`` times (any
    whole number of times when ``n`` is None); None when none does."""
    for dtype in spec.stored_dtypes:
        count = _patch_count(path, dtype)
        if count is not None and (n is None or count == n):
            return dtype
    return None


def _reference_layers(files: Mapping[str, Path], requested: Sequence[str]) -> list[str]:
    """Layers that decide N: the requested ones, else the band files, else every file."""
    if requested:
        return list(requested)
    bands = [k for k in files if LAYERS[k].name in LEVEL_BANDS.get(LAYERS[k].group, ())]
    return bands or list(files)


def _split_patch_count(folder: Path, files: Mapping[str, Path], reference: Sequence[str]) -> int:
    """N shared by the ``reference`` layers; refuse truncated files and differing counts."""
    fixed = [k for k in reference if not LAYERS[k].alt_dtypes]
    counts = {k: _count_samples(files[k], LAYERS[k].dtype) for k in fixed}
    if len(set(counts.values())) > 1:
        usual = Counter(counts.values()).most_common(1)[0][0]
        odd = ", ".join(
            f"{files[k].name}: {files[k].stat().st_size} bytes = {n} patches"
            for k, n in counts.items()
            if n != usual
        )
        same = sum(n == usual for n in counts.values())
        raise DatasetError(
            f"layers in {folder} hold different numbers of patches ({odd}; the other {same} "
            f"layers hold {usual}); a file is incomplete: download it again"
        )
    if counts:
        return next(iter(counts.values()))
    # only layers of several possible dtypes (QA60) decide: the card's dtype is preferred
    key = reference[0]
    dtype = _stored_dtype(files[key], LAYERS[key], None)
    return _count_samples(files[key], dtype or LAYERS[key].dtype)


def _fit_dtypes(
    folder: Path, files: Mapping[str, Path], n: int, requested: Sequence[str]
) -> tuple[dict[str, Path], dict[str, str]]:
    """Files holding ``n`` patches and their dtypes; requested misfits raise, others are skipped."""
    kept: dict[str, Path] = {}
    dtypes: dict[str, str] = {}
    skipped = []
    for key, path in files.items():
        dtype = _stored_dtype(path, LAYERS[key], n)
        if dtype is not None:
            kept[key], dtypes[key] = path, dtype
            continue
        expected = " or ".join(f"{n * _patch_bytes(d)} ({d})" for d in LAYERS[key].stored_dtypes)
        problem = (
            f"{path} has {path.stat().st_size} bytes, not {expected} for the {n} patches "
            f"of the other layers in {folder}"
        )
        if key in requested:
            raise DatasetError(f"{problem}; the file is incomplete: download it again")
        skipped.append(problem)
    if skipped:
        warnings.warn(
            f"leaving out layer files that were not asked for: {'; '.join(skipped)}. Download "
            "them again to use them",
            stacklevel=4,
        )
    return kept, dtypes


def _check_split(folder: Path, files: Mapping[str, Path], requested: Sequence[str]) -> SplitFiles:
    """Patch count and dtypes of one split's ``files`` (see the module docstring)."""
    _require_layers(folder, files, requested)
    n = _split_patch_count(folder, files, _reference_layers(files, requested))
    kept, dtypes = _fit_dtypes(folder, files, n, requested)
    return SplitFiles(folder.name, folder, kept, dtypes, n)


def scan_split(folder: Path, layers: Sequence[str] = ()) -> SplitFiles:
    """Find the layers of one split folder, their patch count and stored dtypes.

    ``layers``: canonical keys (``L1C_B04``) that must be present and agree on the patch
    count; other files that do not fit it are left out with a warning. Without ``layers`` the
    band files decide (see the module docstring).
    """
    return _check_split(folder, _layer_files(folder), layers)


def _split_names(split: str | Sequence[str] | None, root: Path) -> list[str]:
    """Requested split names, checked; None means every split folder present."""
    if split is None:
        names = [s for s in SPLITS if (root / s).is_dir()]
        if not names:
            raise DatasetError(
                f"{root} has none of the folders {', '.join(SPLITS)}; check the path"
            )
        return names
    names = list(as_names(split))
    unknown = [s for s in names if s not in SPLITS]
    if unknown or not names:
        raise DatasetError(
            f"unknown split(s) {unknown or names}; use one or more of {', '.join(SPLITS)}"
        )
    return names


def _narrow_label_classes(spec: LayerSpec, dtype: str) -> dict[int, str] | None:
    """The classes of a label layer stored in a ``dtype`` too narrow for some of them (QA60's
    1024 and 2048 in int8); None when every class fits, or for a layer that is not a label."""
    if spec.scheme is None:
        return None
    classes = dict(get_scheme(spec.scheme).classes)
    limits = np.iinfo(dtype)
    return None if all(limits.min <= v <= limits.max for v in classes) else classes


def widen_narrow_label(patch: np.ndarray, classes: Mapping[int, str]) -> np.ndarray:
    """A label patch stored too narrow for its ``classes`` (int8 QA60) back in their values:
    stored ``v`` with ``v * step`` a class (``step`` the classes' greatest common divisor,
    1024 for QA60) becomes ``v * step``; other values (the pad, -1) stay. Returns int16."""
    step = int(np.gcd.reduce([abs(c) for c in classes if c]))
    widened = patch.astype(np.int16)
    scaled = widened * step
    fits = np.isin(scaled, list(classes)) & (widened >= 0)
    return np.where(fits, scaled, widened).astype(np.int16)


def _resolve_layer(name: str) -> str:
    """Canonical layer key for a user's spelling: ``LABEL_manual_hq``, ``manual_hq``, ``S1_VV``."""
    spec = parse_layer_filename(name)
    if spec is None:
        matches = [s.key for s in LAYERS.values() if s.name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        raise DatasetError(
            f"unknown CloudSEN12 layer {name!r}; use a name such as L1C_B04, S1_VV, "
            f"EXTRA_elevation or one of the labels {', '.join(LABEL_LAYERS)}"
        )
    return spec.key


def _resolve_label(name: str | None) -> tuple[str, str] | None:
    """``(layer key, label scheme)`` of a label layer name; None for no label."""
    if name is None:
        return None
    key = _resolve_layer(name)
    scheme = LAYERS[key].scheme
    if scheme is None:
        raise DatasetError(f"{name!r} is not a label layer; use one of {', '.join(LABEL_LAYERS)}")
    return key, scheme


METADATA_FILE = "metadata.csv"


def _csv_value(text: str) -> Any:
    """A ``metadata.csv`` cell: int, float, None for an empty cell, else the text."""
    if text == "":
        return None
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def read_metadata(folder: Path, n: int) -> list[dict[str, Any]] | None:
    """Rows of ``folder/metadata.csv`` (one per patch, in patch order), None when there is no
    such file; :class:`DatasetError` when it does not hold ``n`` rows."""
    path = folder / METADATA_FILE
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [
            {k: _csv_value(v or "") for k, v in row.items() if k} for row in csv.DictReader(handle)
        ]
    if len(rows) != n:
        raise DatasetError(
            f"{path} has {len(rows)} rows but the split holds {n} patches; the table belongs "
            "to another download or is incomplete: download it again"
        )
    return rows


def _merge_metadata(meta: dict[str, Any], row: Mapping[str, Any] | None) -> dict[str, Any]:
    """``meta`` with the patch's ``metadata.csv`` columns (``metadata_<name>`` where a column
    would replace one of the reader's own keys, e.g. the table's ``index``)."""
    if row is None:
        return meta
    merged = dict(meta)
    for key, value in row.items():
        merged[f"metadata_{key}" if key in meta else key] = value
    return merged


def present_level(present: Mapping[str, Mapping[str, Path]]) -> str:
    """``L1C`` when every split of ``present`` (split -> layer key -> file) has L1C band
    files, else ``L2A`` when every split has L2A ones, else ``L1C`` (whose absence the band
    check then names)."""
    for level in LEVELS:
        if all(any(key.startswith(f"{level}_B") for key in files) for files in present.values()):
            return level
    return LEVELS[0]


class CloudSEN12(CloudDataset):
    """Reader of the CloudSEN12 high-quality memmap release.

    ``split``: ``"train"``, ``"val"``, ``"test"``, a list of them (samples are concatenated
    in that order) or None for all present. ``level``: ``"L1C"`` or ``"L2A"``, or None (the
    default) for the level whose band files the selected splits hold: L1C when both are there,
    the one there when the download holds only one (see :func:`present_level`). ``bands``: band
    names in any spelling (``B4``, ``B04``, ``red``; one name may be a plain string), or None
    for every band of that level present in all selected splits, in catalogue order; names
    that are not spectral bands of the level (B10 in L2A, AOT) raise :class:`DatasetError`.
    ``label``: a ``LABEL_`` layer name
    (``manual_hq``, ``manual_sc``, ``fmask``, ``QA60``, ``s2cloudless``, ``sen2cor``,
    ``cd_fcnn_rgbi``, ``cd_fcnn_rgbi_swir``, ``kappamask_L1C``, ``kappamask_L2A``) or None.
    ``layers``: further layers to return under ``sample["layers"]`` (e.g. ``S1_VV``,
    ``elevation``), scaled to physical values as float32 (label layers stay raw).
    ``crop=True`` returns the 509 x 509 interior instead of the padded 512 x 512 patch.

    Sample: ``image`` (C, H, W) float32 = stored int16 * 0.0001 (reflectance; the pad keeps
    its stored values); ``mask`` (H, W) raw label values (int8; int16 for fmask; QA60 as
    its file size says, see the module docstring);
    ``mask_canonical`` (H, W) uint8 through the label layer's scheme, values the scheme does
    not define become 255; ``valid`` (H, W) bool, interior pixels with a defined label.
    For ``manual_sc`` (scribbles) any value outside 0-3 is an unlabelled pixel: it stays as
    stored in ``mask``, becomes 255 in ``mask_canonical`` and False in ``valid``.
    ``meta``: ``split``, ``index`` (within the split), ``level``, ``label``, and the patch's
    ``metadata.csv`` columns when the split folder has that table (``roi_id``, ``land_cover``,
    ``cloud_coverage``, ...). ``roi``: one ``roi_id`` or a list; keeps only their patches
    (needs ``metadata.csv``).

    Each file is opened once, lazily, as an ``np.memmap`` and kept; a sample reads only its
    own patch. Pickling (e.g. into DataLoader workers) drops the open memmaps.
    """

    name: ClassVar[str] = "cloudsen12"
    label_scheme: ClassVar[str] = "cloudsen12"

    @classmethod
    def stored_layer(cls, name: str) -> tuple[str, str]:
        """The stored cloud mask ``LABEL_<name>`` (e.g. ``fmask``, ``QA60``, ``sen2cor``)."""
        keys = [k for k, spec in LAYERS.items() if name.lower() in (k.lower(), spec.name.lower())]
        if len(keys) != 1:
            raise DatasetError(
                f"unknown stored layer {name!r}; use e.g. layer:fmask, layer:QA60, layer:sen2cor"
            )
        scheme = LAYERS[keys[0]].scheme
        if scheme is None:
            raise DatasetError(f"layer {name!r} is not a cloud mask; choose a LABEL_ layer")
        return keys[0], scheme

    @classmethod
    def benchmark_options(cls, splits: Sequence[str], layers: Sequence[str]) -> dict[str, Any]:
        """The splits to score, and the stored layers to read with each sample."""
        options: dict[str, Any] = {"split": list(splits)}
        if layers:
            options["layers"] = list(layers)
        return options

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[str] | None = "test",
        *,
        level: str | None = None,
        bands: str | Sequence[str] | None = None,
        label: str | None = "manual_hq",
        layers: str | Sequence[str] = (),
        canonical: bool = True,
        crop: bool = False,
        roi: str | Sequence[str] | None = None,
    ) -> None:
        self.root = require_path(root, "CloudSEN12 root folder")
        folders = {
            s: require_path(self.root / s, f"CloudSEN12 split folder {s!r}")
            for s in _split_names(split, self.root)
        }
        present: dict[str, dict[str, Path]] = {}
        for s, folder in folders.items():  # loops, so that warnings point at the caller
            present[s] = _layer_files(folder)
        self.level = self._check_level(level) if level else present_level(present)
        self.canonical, self.crop = canonical, crop
        self.bands = self._select_bands(bands, present)
        self._band_keys = tuple(f"{self.level}_{b}" for b in self.bands)
        self._label = _resolve_label(label)
        self.layer_keys = tuple(_resolve_layer(n) for n in as_names(layers))
        label_keys = (self._label[0],) if self._label else ()
        requested = (*self._band_keys, *self.layer_keys, *label_keys)
        self.splits: dict[str, SplitFiles] = {}
        for s, folder in folders.items():
            self.splits[s] = _check_split(folder, present[s], requested)
        self.metadata = {s: read_metadata(f.folder, f.n) for s, f in self.splits.items()}
        self._index: list[tuple[str, int]] = [
            (s, i) for s, files in self.splits.items() for i in range(files.n)
        ]
        if roi is not None:
            self._index = self._select_rois(as_names(roi))
        self._memmaps: dict[tuple[str, str], np.memmap] = {}
        self._interior = self._interior_mask()

    def _select_rois(self, rois: Sequence[str]) -> list[tuple[str, int]]:
        """The samples whose ``metadata.csv`` ``roi_id`` is one of ``rois``."""
        lacking = [s for s, rows in self.metadata.items() if rows is None]
        if lacking:
            raise DatasetError(
                f"roi= needs the release's {METADATA_FILE}, which "
                f"{', '.join(str(self.splits[s].folder) for s in lacking)} lack(s); download it"
            )
        wanted = set(rois)
        kept = [
            (s, i)
            for s, i in self._index
            if str((self.metadata[s] or [])[i].get("roi_id")) in wanted
        ]
        if not kept:
            raise DatasetError(
                f"no patch of the selected splits has roi_id {', '.join(sorted(wanted))}; "
                f"check the ROI names (e.g. ROI_0530) in {METADATA_FILE}"
            )
        return kept

    def metadata_row(self, split: str, i: int) -> dict[str, Any] | None:
        """The ``metadata.csv`` row of patch ``i`` of ``split``, None without the table."""
        rows = self.metadata.get(split)
        return dict(rows[i]) if rows is not None else None

    @property
    def label_key(self) -> str | None:
        """Canonical key of the label layer (``LABEL_manual_hq``), None without labels."""
        return self._label[0] if self._label else None

    @property
    def mask_scheme(self) -> str | None:
        """Label scheme of ``mask`` (see ``s2clouds.labels``), None without labels."""
        return self._label[1] if self._label else None

    # -- construction helpers -------------------------------------------------------------
    @staticmethod
    def _check_level(level: str) -> str:
        if level.upper() not in LEVELS:
            raise DatasetError(f"unknown level {level!r}; use 'L1C' or 'L2A'")
        return level.upper()

    def _select_bands(
        self, bands: str | Sequence[str] | None, present: Mapping[str, Mapping[str, Path]]
    ) -> tuple[str, ...]:
        """Canonical band names: the requested ones, or every band of the level in all splits."""
        catalogue = LEVEL_BANDS[self.level]
        if bands is not None:
            chosen = canonical_band_names(bands)
            foreign = [b for b in chosen if b not in catalogue]
            if foreign:
                raise DatasetError(
                    f"{', '.join(foreign)}: not {self.level} spectral band(s) of CloudSEN12, "
                    f"which has {', '.join(catalogue)}. B10 exists only with level='L1C'; read "
                    "non-spectral layers such as L2A_AOT with layers=[...]"
                )
            return chosen
        chosen = tuple(
            b for b in catalogue if all(f"{self.level}_{b}" in f for f in present.values())
        )
        if not chosen:
            found = sorted({k for f in present.values() for k in f})
            other = "L2A" if self.level == "L1C" else "L1C"
            raise DatasetError(
                f"no {self.level} band files (e.g. {self.level}_B04.dat) in "
                f"{', '.join(str(self.root / s) for s in present)}; found {', '.join(found)}. "
                f"Choose level='{other}' (-O level={other} on the command line) or check the "
                "download"
            )
        return chosen

    def _interior_mask(self) -> np.ndarray:
        """(H, W) bool, True on the 509 x 509 data area (all True when cropped)."""
        if self.crop:
            size = INTERIOR.stop - INTERIOR.start
            return np.ones((size, size), dtype=bool)
        interior = np.zeros((PATCH_SIZE, PATCH_SIZE), dtype=bool)
        interior[INTERIOR, INTERIOR] = True
        return interior

    # -- alternative constructors ---------------------------------------------------------
    @classmethod
    def split_sizes(cls, root: str | Path) -> dict[str, int]:
        """Number of patches of every split folder under ``root`` (from file sizes only)."""
        root = require_path(root, "CloudSEN12 root folder")
        return {s: scan_split(root / s).n for s in _split_names(None, root)}

    @classmethod
    def from_index(
        cls, root: str | Path, index: Sequence[tuple[str, int]], **kwargs: Any
    ) -> CloudSEN12:
        """A reader over explicit ``(split, index)`` pairs, e.g. from ``splits.recompose``.

        No data is copied; ``kwargs`` are the constructor's keyword options.
        """
        if "split" in kwargs:
            raise DatasetError(
                "from_index takes its splits from the (split, index) pairs; leave split= out"
            )
        pairs = [(str(s), int(i)) for s, i in index]
        if not pairs:
            raise DatasetError("the index list is empty; give at least one (split, index) pair")
        dataset = cls(root, split=sorted({s for s, _ in pairs}, key=SPLITS.index), **kwargs)
        for split, i in pairs:
            if not 0 <= i < dataset.splits[split].n:
                raise DatasetError(
                    f"index {i} is out of range for split {split!r} with "
                    f"{dataset.splits[split].n} patches; rebuild the index from split_sizes()"
                )
        dataset._index = pairs
        return dataset

    @classmethod
    def detect(cls, path: Path) -> bool:
        """True when a split folder of ``path`` holds at least one CloudSEN12 ``.dat`` layer."""
        path = Path(path)
        return any(
            parse_layer_filename(p.name) is not None
            for s in SPLITS
            if (path / s).is_dir()
            for p in (path / s).glob("*.dat")
        )

    # -- reading ---------------------------------------------------------------------------
    def available_layers(self, split: str | None = None) -> tuple[str, ...]:
        """Canonical names of the layers present in ``split`` (default: in every selected split)."""
        chosen = [self.splits[split]] if split is not None else list(self.splits.values())
        common = set.intersection(*(set(f.files) for f in chosen))
        return tuple(k for k in LAYERS if k in common)

    def index(self) -> list[tuple[str, int]]:
        """The ``(split, index within split)`` pair of every sample, in sample order."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def _memmap(self, split: str, key: str) -> np.memmap:
        """The (N, 512, 512) memmap of one layer file, opened on first use and kept."""
        handle = self._memmaps.get((split, key))
        if handle is None:
            files = self.splits[split]
            handle = np.memmap(
                files.files[key],
                dtype=files.dtypes[key],
                mode="r",
                shape=(files.n, PATCH_SIZE, PATCH_SIZE),
            )
            self._memmaps[(split, key)] = handle
        return handle

    def _window(self) -> tuple[slice, slice]:
        return (INTERIOR, INTERIOR) if self.crop else (slice(None), slice(None))

    def _read_scaled(self, split: str, i: int, keys: Sequence[str]) -> np.ndarray:
        """(len(keys), H, W) float32 physical values of patch ``i`` of ``split``."""
        rows, cols = self._window()
        size = self._interior.shape
        out = np.empty((len(keys), *size), dtype=np.float32)
        for c, key in enumerate(keys):
            patch = self._memmap(split, key)[i, rows, cols]
            np.multiply(patch, np.float32(LAYERS[key].scale), out=out[c])
        return out

    def _read_raw(self, split: str, i: int, key: str) -> np.ndarray:
        """(H, W) stored values of patch ``i`` of ``split``, copied out of the memmap."""
        rows, cols = self._window()
        patch = np.array(self._memmap(split, key)[i, rows, cols])
        return self._widen_storable(split, i, key, patch)

    def _widen_storable(self, split: str, i: int, key: str, patch: np.ndarray) -> np.ndarray:
        """A label patch stored in a dtype too narrow for its classes (int8 QA60) in its
        classes' values (:func:`widen_narrow_label`); refused when its interior then holds
        values that are not classes: they cannot mean what the scheme says."""
        files = self.splits[split]
        dtype = files.dtypes[key]
        classes = _narrow_label_classes(LAYERS[key], dtype)
        if classes is None:
            return patch
        patch = widen_narrow_label(patch, classes)
        odd = [int(v) for v in np.unique(patch[self._interior]) if int(v) not in classes]
        if odd:
            name = LAYERS[key].name
            raise DatasetError(
                f"{files.files[key]} is stored as {dtype} (the dataset card's dtype), which "
                f"cannot hold every {name} class ({', '.join(map(str, classes))}); patch {i} "
                f"holds {odd[:8]}. Use another label layer (e.g. manual_hq), or an int16 "
                f"{name} file ({files.n * _patch_bytes('int16')} bytes for {files.n} patches)"
            )
        return patch

    def _read_label(
        self, split: str, i: int
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """``(mask, valid, mask_canonical)``; canonical is 255 on the pad and undefined values."""
        if self._label is None:
            return None, self._interior.copy(), None
        key, scheme = self._label
        mask = self._read_raw(split, i, key)
        canonical = to_canonical(mask, scheme, unknown="nodata")
        canonical[~self._interior] = NODATA
        return mask, canonical != NODATA, canonical

    def _read_layer(self, split: str, i: int, key: str) -> np.ndarray:
        if LAYERS[key].group == "LABEL":
            return self._read_raw(split, i, key)
        return self._read_scaled(split, i, [key])[0]

    def __getitem__(self, index: int) -> Sample:
        split, i = self._index[self._check_index(index)]
        mask, valid, canonical = self._read_label(split, i)
        sample: Sample = {
            "image": self._read_scaled(split, i, self._band_keys),
            "mask": mask,
            "valid": valid,
            "bands": self.bands,
            "crs": None,
            "transform": None,
            "meta": _merge_metadata(
                {"split": split, "index": i, "level": self.level, "label": self.label_key},
                self.metadata_row(split, i),
            ),
        }
        if self.canonical:
            sample["mask_canonical"] = canonical
        if self.layer_keys:
            sample["layers"] = {k: self._read_layer(split, i, k) for k in self.layer_keys}
        return sample

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for split, _ in self._index:
            counts[split] = counts.get(split, 0) + 1
        return super().summary() | {
            "root": str(self.root),
            "splits": counts,
            "level": self.level,
            "bands": list(self.bands),
            "label": self.label_key,
            "label scheme": self.mask_scheme,
            "patch size": f"{self._interior.shape[0]}x{self._interior.shape[1]}",
            "layers available": list(self.available_layers()),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memmaps"] = {}
        return state
