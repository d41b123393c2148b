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
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from s2clouds.bands import L1C_BANDS, L2A_BANDS, canonical_band_name, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample, require_path
from s2clouds.errors import BandError, DatasetError
from s2clouds.labels import NODATA, to_canonical

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

    @property
    def key(self) -> str:
        """Canonical layer name, e.g. ``L1C_B04`` or ``LABEL_manual_hq``."""
        return f"{self.group}_{self.name}"

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize


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
    # The card says int8 for QA60, whose flag values (1024, 2048) do not fit in int8; we keep
    # the card's dtype. A file really stored as int16 fails the patch-count check loudly.
    ("LABEL", "QA60", "int8", 1.0, "qa60"),
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
    )
}
_BY_GROUP_AND_NAME = {(s.group, s.name.lower()): s for s in LAYERS.values()}
LABEL_LAYERS: tuple[str, ...] = tuple(s.name for s in LAYERS.values() if s.group == "LABEL")
#: manual_sc: pixels whose value is not a class 0-3 carry no scribble (unlabelled)
SCRIBBLE_LABEL = "manual_sc"


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
    """The layer files found in one split folder and their common sample count ``n``."""

    name: str
    folder: Path
    files: Mapping[str, Path]
    n: int


def _unique_layer_files(folder: Path) -> dict[str, Path]:
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
    return found


def _count_samples(path: Path, spec: LayerSpec) -> int:
    """N of a raw (N, 512, 512) file, from its size; refuse sizes that are not a multiple."""
    size = path.stat().st_size
    per_sample = PATCH_SIZE * PATCH_SIZE * spec.itemsize
    if size % per_sample:
        raise DatasetError(
            f"{path} has {size} bytes, not a multiple of {per_sample} "
            f"(one {PATCH_SIZE}x{PATCH_SIZE} {spec.dtype} patch); the file is truncated or "
            "not a CloudSEN12 layer: download it again"
        )
    return size // per_sample


def scan_split(folder: Path) -> SplitFiles:
    """Find the layers of one split folder and check that they hold the same number of patches."""
    files = _unique_layer_files(folder)
    if not files:
        raise DatasetError(
            f"{folder} holds no CloudSEN12 layer files (e.g. L1C_B04.dat, manual_hq.dat); "
            "check the dataset root"
        )
    counts = {key: _count_samples(path, LAYERS[key]) for key, path in files.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(
            f"{files[k].name}: {files[k].stat().st_size} bytes = {n} patches"
            for k, n in counts.items()
        )
        raise DatasetError(
            f"layers in {folder} hold different numbers of patches ({detail}); "
            "a file is incomplete: download it again"
        )
    return SplitFiles(folder.name, folder, files, next(iter(counts.values())))


def _split_names(split: str | Sequence[str] | None, root: Path) -> list[str]:
    """Requested split names, checked; None means every split folder present."""
    if split is None:
        names = [s for s in SPLITS if (root / s).is_dir()]
        if not names:
            raise DatasetError(
                f"{root} has none of the folders {', '.join(SPLITS)}; check the path"
            )
        return names
    names = [split] if isinstance(split, str) else list(split)
    unknown = [s for s in names if s not in SPLITS]
    if unknown or not names:
        raise DatasetError(
            f"unknown split(s) {unknown or names}; use one or more of {', '.join(SPLITS)}"
        )
    return names


def _as_list(names: str | Sequence[str]) -> list[str]:
    """A single name given as a string is a one-element list, not a sequence of letters."""
    return [names] if isinstance(names, str) else list(names)


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


class CloudSEN12(CloudDataset):
    """Reader of the CloudSEN12 high-quality memmap release.

    ``split``: ``"train"``, ``"val"``, ``"test"``, a list of them (samples are concatenated
    in that order) or None for all present. ``level``: ``"L1C"`` or ``"L2A"``. ``bands``: band
    names in any spelling (``B4``, ``B04``, ``red``), or None for every band of that level
    present in all selected splits, in catalogue order. ``label``: a ``LABEL_`` layer name
    (``manual_hq``, ``manual_sc``, ``fmask``, ``QA60``, ``s2cloudless``, ``sen2cor``,
    ``cd_fcnn_rgbi``, ``cd_fcnn_rgbi_swir``, ``kappamask_L1C``, ``kappamask_L2A``) or None.
    ``layers``: further layers to return under ``sample["layers"]`` (e.g. ``S1_VV``,
    ``elevation``), scaled to physical values as float32 (label layers stay raw).
    ``crop=True`` returns the 509 x 509 interior instead of the padded 512 x 512 patch.

    Sample: ``image`` (C, H, W) float32 = stored int16 * 0.0001 (reflectance; the pad keeps
    its stored values); ``mask`` (H, W) raw label values (int8, int16 for fmask);
    ``mask_canonical`` (H, W) uint8 through the label layer's scheme, values the scheme does
    not define become 255; ``valid`` (H, W) bool, interior pixels with a defined label.
    For ``manual_sc`` (scribbles) any value outside 0-3 is an unlabelled pixel: it stays as
    stored in ``mask``, becomes 255 in ``mask_canonical`` and False in ``valid``.
    ``meta``: ``split``, ``index`` (within the split), ``level``, ``label``.

    Each file is opened once, lazily, as an ``np.memmap`` and kept; a sample reads only its
    own patch. Pickling (e.g. into DataLoader workers) drops the open memmaps.
    """

    name: ClassVar[str] = "cloudsen12"
    label_scheme: ClassVar[str] = "cloudsen12"

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[str] | None = "test",
        *,
        level: str = "L1C",
        bands: Sequence[str] | None = None,
        label: str | None = "manual_hq",
        layers: Sequence[str] = (),
        canonical: bool = True,
        crop: bool = False,
    ) -> None:
        self.root = require_path(root, "CloudSEN12 root folder")
        self.level = self._check_level(level)
        self.splits = {
            s: scan_split(require_path(self.root / s, f"CloudSEN12 split folder {s!r}"))
            for s in _split_names(split, self.root)
        }
        self.canonical, self.crop = canonical, crop
        self.bands = self._select_bands(bands)
        self._band_keys = tuple(f"{self.level}_{b}" for b in self.bands)
        self.label_key = _resolve_layer(label) if label is not None else None
        if self.label_key is not None and LAYERS[self.label_key].group != "LABEL":
            raise DatasetError(
                f"{label!r} is not a label layer; use one of {', '.join(LABEL_LAYERS)}"
            )
        self.layer_keys = tuple(_resolve_layer(n) for n in _as_list(layers))
        for key in (
            *self._band_keys,
            *self.layer_keys,
            *([self.label_key] if self.label_key else []),
        ):
            self._require_layer(key)
        self.mask_scheme = LAYERS[self.label_key].scheme if self.label_key else None
        self._index: list[tuple[str, int]] = [
            (s, i) for s, files in self.splits.items() for i in range(files.n)
        ]
        self._memmaps: dict[tuple[str, str], np.memmap] = {}
        self._interior = self._interior_mask()

    # -- construction helpers -------------------------------------------------------------
    @staticmethod
    def _check_level(level: str) -> str:
        if level.upper() not in LEVELS:
            raise DatasetError(f"unknown level {level!r}; use 'L1C' or 'L2A'")
        return level.upper()

    def _select_bands(self, bands: Sequence[str] | None) -> tuple[str, ...]:
        """Canonical band names: the requested ones, or every band of the level in all splits."""
        if bands is not None:
            return canonical_band_names(_as_list(bands))
        catalogue = L1C_BANDS if self.level == "L1C" else L2A_BANDS
        present = [
            b
            for b in catalogue
            if all(f"{self.level}_{b}" in f.files for f in self.splits.values())
        ]
        if not present:
            found = sorted({k for f in self.splits.values() for k in f.files})
            raise DatasetError(
                f"no {self.level} band files (e.g. {self.level}_B04.dat) in "
                f"{', '.join(str(f.folder) for f in self.splits.values())}; found {', '.join(found)}. "
                f"Choose level='{'L2A' if self.level == 'L1C' else 'L1C'}' or check the download"
            )
        return tuple(present)

    def _require_layer(self, key: str) -> None:
        """Refuse a layer that some selected split lacks, naming the expected file."""
        for files in self.splits.values():
            if key not in files.files:
                spec = LAYERS[key]
                expected = files.folder / f"{key}.dat"
                alt = f" (or {spec.name}.dat)" if spec.group == "LABEL" else ""
                raise DatasetError(
                    f"missing file {expected}{alt}; this split has {', '.join(sorted(files.files))}. "
                    "Download that layer or choose another band/label"
                )

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
            files, spec = self.splits[split], LAYERS[key]
            handle = np.memmap(
                files.files[key],
                dtype=spec.dtype,
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
        return np.array(self._memmap(split, key)[i, rows, cols])

    def _read_label(
        self, split: str, i: int
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """``(mask, valid, mask_canonical)``; canonical is 255 on the pad and undefined values."""
        if self.label_key is None or self.mask_scheme is None:
            return None, self._interior.copy(), None
        mask = self._read_raw(split, i, self.label_key)
        canonical = to_canonical(mask, self.mask_scheme, unknown="nodata")
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
            "meta": {"split": split, "index": i, "level": self.level, "label": self.label_key},
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
