"""Seeded, reproducible recomposition of a dataset's published splits.

The CloudSEN12 card suggests pooling the train/val/test patches and drawing new subsets at the
start of each trial, to avoid a bias from the original selection. :func:`recompose` does that
on ``(split, index)`` pairs only; readers such as ``CloudSEN12.from_index`` then serve the
subsets straight from the original files, so no data is copied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from s2clouds.errors import DatasetError

SampleRef = tuple[str, int]
_TOLERANCE = 1e-9


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise DatasetError("give at least one subset, e.g. fractions={'train': 0.8, 'test': 0.2}")
    bad = {name: f for name, f in fractions.items() if not (0.0 < f <= 1.0)}
    if bad:
        raise DatasetError(f"subset fractions must lie in (0, 1]; got {bad}")
    total = math.fsum(fractions.values())
    if total > 1.0 + _TOLERANCE:
        raise DatasetError(
            f"subset fractions sum to {total:.6g} > 1; scale them down so that they sum to 1 or less"
        )


def _subset_sizes(total: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Samples per subset: floor of fraction * total, and when the fractions sum to 1 the
    remainder goes to the subsets with the largest fractional parts (so every sample is used).
    """
    exact = {name: f * total for name, f in fractions.items()}
    sizes = {name: math.floor(x) for name, x in exact.items()}
    if abs(math.fsum(fractions.values()) - 1.0) <= _TOLERANCE:
        by_remainder = sorted(exact, key=lambda n: (sizes[n] - exact[n], list(exact).index(n)))
        for name in by_remainder[: total - sum(sizes.values())]:
            sizes[name] += 1
    return sizes


def pooled_index(dataset_sizes: Mapping[str, int]) -> list[SampleRef]:
    """Every ``(split, index)`` pair, splits in sorted name order so dict order does not matter."""
    negative = {s: n for s, n in dataset_sizes.items() if n < 0}
    if negative:
        raise DatasetError(f"split sizes must be >= 0; got {negative}")
    return [(split, i) for split in sorted(dataset_sizes) for i in range(dataset_sizes[split])]


def recompose(
    dataset_sizes: Mapping[str, int], fractions: Mapping[str, float], seed: int
) -> dict[str, list[SampleRef]]:
    """Pool the published splits and draw new disjoint subsets.

    ``dataset_sizes``: patches per published split, e.g. ``{"train": 8490, "val": 535,
    "test": 975}`` (``CloudSEN12.split_sizes(root)`` gives it). ``fractions``: new subset name
    -> fraction of the pooled total; they may sum to less than 1 (the rest is left out). The
    same sizes, fractions and ``seed`` always give the same subsets. Each subset is a list of
    ``(split, index within split)`` pairs sorted by file position (cheap sequential reads;
    shuffle in your data loader).
    """
    _check_fractions(fractions)
    pool = pooled_index(dataset_sizes)
    order = np.random.default_rng(seed).permutation(len(pool))
    subsets: dict[str, list[SampleRef]] = {}
    start = 0
    for name, size in _subset_sizes(len(pool), fractions).items():
        chosen = order[start : start + size]
        subsets[name] = sorted(pool[i] for i in chosen)
        start += size
    return subsets
