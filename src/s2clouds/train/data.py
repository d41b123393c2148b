"""Training samples from any :class:`~s2clouds.datasets.base.CloudDataset` (numpy only).

A sample gives the bands a model needs, selected by name from ``sample["bands"]``, and a
target built from ``sample["mask_canonical"]`` with 255 wherever the label is unusable:
``valid`` False, any selected band NaN, or no data in the mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s2clouds.bands import band_indices, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample
from s2clouds.datasets.registry import class_histogram, sample_positions
from s2clouds.errors import DatasetError
from s2clouds.labels import CANONICAL_CLASSES, NODATA

#: pixels drawn per sample when estimating band statistics
STAT_PIXELS_PER_SAMPLE = 20_000


def sample_arrays(sample: Sample, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(image (C, H, W) float32 reflectance in `bands` order, target (H, W) uint8)``.

    The target is the canonical mask with 255 where the sample is not valid or a band is NaN.
    Raises :class:`DatasetError` for samples without a canonical mask and ``BandError`` when
    a band is missing.
    """
    mask = sample.get("mask_canonical")
    if mask is None:
        raise DatasetError(
            "training needs labelled samples with a 'mask_canonical'; open the dataset with "
            "canonical=True and a label layer (e.g. -O label=manual_hq)"
        )
    image = np.asarray(sample["image"])[band_indices(sample["bands"], bands)]
    image = image.astype(np.float32, copy=False)
    target = np.array(mask, dtype=np.uint8, copy=True)
    unusable = ~np.all(np.isfinite(image), axis=0)
    valid = sample.get("valid")
    if valid is not None:
        unusable |= ~np.asarray(valid, dtype=bool)
    target[unusable] = NODATA
    target[target >= len(CANONICAL_CLASSES)] = NODATA
    return image, target


def band_statistics(
    dataset: CloudDataset,
    bands: Sequence[str],
    indices: Sequence[int],
    *,
    max_samples: int = 64,
    seed: int = 0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std (reflectance) over labelled pixels of up to ``max_samples``
    evenly spaced samples of ``indices`` (a random subset of pixels of each)."""
    rng = np.random.default_rng(seed)
    pixels = []
    for position in sample_positions(len(indices), max_samples):
        image, target = sample_arrays(dataset[indices[position]], bands)
        flat = image.reshape(len(bands), -1)[:, target.ravel() != NODATA]
        if flat.shape[1] > STAT_PIXELS_PER_SAMPLE:
            flat = flat[:, rng.choice(flat.shape[1], STAT_PIXELS_PER_SAMPLE, replace=False)]
        pixels.append(flat)
    stacked = np.concatenate(pixels, axis=1) if pixels else np.empty((len(bands), 0))
    if stacked.shape[1] < 2:
        raise DatasetError(
            "the training samples hold no labelled pixels with finite values in the bands "
            f"{', '.join(bands)}; check the dataset's labels and bands"
        )
    mean = stacked.mean(axis=1)
    std = np.maximum(stacked.std(axis=1), 1e-4)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def class_counts(dataset: CloudDataset, *, max_samples: int = 64) -> list[int]:
    """Canonical class pixel counts (clear, thick, thin, shadow) over up to ``max_samples``
    samples (see :func:`~s2clouds.datasets.registry.class_histogram`)."""
    counts, _ = class_histogram(dataset, max_samples=max_samples)
    return [counts[name] for name in CANONICAL_CLASSES.values()]


def holdout_split(
    n: int, fraction: float, seed: int, minimum: int = 10
) -> tuple[list[int], list[int]]:
    """Seeded ``(train, validation)`` index lists: ``fraction`` of ``n`` held out (at least
    one sample) when ``n >= minimum``; below that everything trains and nothing is held out."""
    if n < minimum or fraction <= 0:
        return list(range(n)), []
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


@dataclass(frozen=True)
class SampleSource:
    """Samples ``indices`` of ``dataset`` with the bands of a model (a cheap view)."""

    dataset: CloudDataset
    indices: tuple[int, ...]
    bands: tuple[str, ...]

    @classmethod
    def of(
        cls, dataset: CloudDataset, bands: Sequence[str], indices: Sequence[int] | None = None
    ) -> SampleSource:
        chosen = tuple(range(len(dataset))) if indices is None else tuple(indices)
        if not chosen:
            raise DatasetError(f"the {dataset.name} dataset has no samples to train on")
        return cls(dataset, chosen, canonical_band_names(tuple(bands)))

    def __len__(self) -> int:
        return len(self.indices)

    def arrays(self, position: int) -> tuple[np.ndarray, np.ndarray, Sample]:
        """Image, target and the raw sample at ``position`` of this view."""
        sample = self.dataset[self.indices[position]]
        image, target = sample_arrays(sample, self.bands)
        return image, target, sample


def train_val_sources(
    dataset: CloudDataset,
    val_dataset: CloudDataset | None,
    bands: Sequence[str],
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_val_samples: int | None = None,
) -> tuple[SampleSource, SampleSource]:
    """Training and validation views: ``val_dataset`` when given, else a seeded hold-out of
    ``val_fraction`` (validation on the training samples when there are too few)."""
    if val_dataset is not None:
        train_idx, val_idx = list(range(len(dataset))), list(range(len(val_dataset)))
        val_source_ds = val_dataset
    else:
        train_idx, val_idx = holdout_split(len(dataset), val_fraction, seed)
        val_idx = val_idx or train_idx
        val_source_ds = dataset
    if max_val_samples is not None:
        val_idx = val_idx[:max_val_samples]
    return (
        SampleSource.of(dataset, bands, train_idx),
        SampleSource.of(val_source_ds, bands, val_idx),
    )
