"""Every dataset reader by short name, imported only when used; detection and opening by path."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from s2clouds.datasets.base import CloudDataset, require_path
from s2clouds.errors import DatasetError
from s2clouds.labels import CANONICAL_CLASSES, NODATA
from s2clouds.registry import Registry

#: entry-point group of third-party dataset readers: each names a :class:`CloudDataset`
#: subclass (docs/plugins.md); detection tries them after the built-in readers
DATASET_ENTRY_POINTS = "s2clouds.datasets"


def _reader_class(kind: str, loaded: Any) -> type[CloudDataset]:
    """``loaded`` when it is a :class:`CloudDataset` subclass (a lazy entry or plugin)."""
    if not (isinstance(loaded, type) and issubclass(loaded, CloudDataset)):
        raise TypeError(f"expected a CloudDataset subclass, got {loaded!r}")
    return loaded


#: short name -> reader class, imported on first use; detection tries them in this order
DATASETS: Registry[type[CloudDataset]] = Registry(
    "dataset kind", group=DATASET_ENTRY_POINTS, adapt=_reader_class
)
for _kind, _target in {
    "cloudsen12": "s2clouds.datasets.cloudsen12:CloudSEN12",
    "cloudsen12-taco": "s2clouds.datasets.cloudsen12_taco:CloudSEN12Taco",
    "cmc": "s2clouds.datasets.cmc:CloudMaskCatalogue",
    "temporal": "s2clouds.datasets.temporal:TemporalCloudDataset",
    "sen12ms": "s2clouds.datasets.sen12ms:SEN12MS",
    "chips": "s2clouds.datasets.chips:ChipFolders",
    "sen12mscr": "s2clouds.datasets.sen12mscr:SEN12MSCRPairs",
    "sen12mscr-ts": "s2clouds.datasets.sen12mscr:SEN12MSCRSeries",
    "sen12mscr-release": "s2clouds.datasets.sen12mscr_release:SEN12MSCRRelease",
    "sen12mscr-ts-release": "s2clouds.datasets.sen12mscrts_release:SEN12MSCRTSRelease",
    "oncloudn": "s2clouds.datasets.oncloudn:OnCloudN",
}.items():
    DATASETS.register_lazy(_kind, _target)


def dataset_class(kind: str) -> type[CloudDataset]:
    """The reader class for a short name such as ``"cloudsen12"`` or ``"cmc"``
    (:class:`~s2clouds.errors.UnknownNameError` listing the known ones)."""
    return DATASETS[kind]


def detect_dataset(path: str | Path) -> str:
    """Short name of the first reader whose ``detect`` accepts ``path`` (by file names only).

    Raises :class:`DatasetError` when none matches.
    """
    folder = require_path(path, "dataset folder")
    for kind, cls in DATASETS.items():
        if cls.detect(folder):
            return kind
    raise DatasetError(
        f"{folder} does not look like any known dataset ({', '.join(DATASETS)}); check the "
        "path (give the dataset's root folder) or name the kind explicitly (kind=)"
    )


def open_dataset(path: str | Path, kind: str | None = None, **kwargs: Any) -> CloudDataset:
    """Open the dataset at ``path`` with the reader ``kind`` (detected when None).

    ``kwargs`` are passed to the reader's constructor (e.g. ``split="test"`` for CloudSEN12).
    """
    cls = dataset_class(kind if kind is not None else detect_dataset(path))
    _check_options(cls, kwargs)
    # every reader's constructor takes the root path first (the base class declares none)
    reader: Callable[..., CloudDataset] = cls
    return reader(Path(path), **kwargs)


def _check_options(cls: type[CloudDataset], kwargs: dict[str, Any]) -> None:
    """Refuse keyword options the reader's constructor does not take, listing the ones it does."""
    signature = inspect.signature(cls)
    try:
        signature.bind(Path("."), **kwargs)
    except TypeError as exc:
        accepted = list(signature.parameters)[1:]
        raise DatasetError(f"{cls.__name__}: {exc}; its options are {', '.join(accepted)}") from exc
    for key, value in kwargs.items():
        expected = OPTION_TYPES.get(str(signature.parameters[key].annotation))
        if expected is not None and not _is_exactly(value, expected):
            raise DatasetError(
                f"{cls.__name__}: option {key}={value!r} must be {OPTION_WORDS[expected]}"
            )


#: annotations of reader options whose values are checked (a typo must not read as True)
OPTION_TYPES: dict[str, type] = {"bool": bool, "int": int}
OPTION_WORDS: dict[type, str] = {bool: "true or false", int: "a whole number"}


def _is_exactly(value: Any, expected: type) -> bool:
    """``isinstance`` where a bool is not an int."""
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


def sample_positions(n: int, max_samples: int | None) -> list[int]:
    """All of ``range(n)``, or ``max_samples`` evenly spaced positions when ``n`` is larger."""
    if max_samples is None or n <= max_samples:
        return list(range(n))
    if max_samples < 1:
        raise DatasetError("max_samples must be at least 1")
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, max_samples)})


def class_histogram(
    dataset: CloudDataset, *, max_samples: int | None = 50
) -> tuple[dict[str, int], int]:
    """Pixel counts per canonical class (and no data) over the samples' ``mask_canonical``.

    Reads at most ``max_samples`` evenly spaced samples (all when None). Returns
    ``(counts by class name, number of samples read)``; samples without a canonical mask are
    skipped (open the dataset with ``canonical=True``).
    """
    names = dict(CANONICAL_CLASSES) | {NODATA: "no data"}
    totals = np.zeros(256, dtype=np.int64)
    used = 0
    for position in sample_positions(len(dataset), max_samples):
        mask = dataset[position].get("mask_canonical")
        if mask is None:
            continue
        totals += np.bincount(np.asarray(mask, dtype=np.uint8).ravel(), minlength=256)
        used += 1
    return {name: int(totals[value]) for value, name in names.items()}, used
