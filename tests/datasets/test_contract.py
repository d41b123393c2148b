"""The sample contract of ``datasets.base``, checked on every registered reader.

Every kind in ``datasets.registry.DATASETS`` must have a fixture writer
``tests/data/<kind>/make.py``; its tiny dataset must be detected as that kind, open through
the registry, give samples with the contract's keys, shapes and dtypes, and plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.bands import canonical_band_name
from s2clouds.datasets.base import SAMPLE_KEYS, CloudDataset, Sample
from s2clouds.datasets.registry import DATASETS, dataset_class, detect_dataset, open_dataset
from s2clouds.labels import CANONICAL_CLASSES, NODATA

TESTS = Path(__file__).parent.parent
#: readers whose samples are time series: (T, C, H, W) images, (T, H, W) masks
TIME_SERIES = {"temporal"}
CANONICAL_VALUES = {*CANONICAL_CLASSES, NODATA}
#: readers that need an optional package: kind -> module
OPTIONAL_PACKAGES = {"cloudsen12-taco": "tacoreader"}


@pytest.fixture(params=list(DATASETS))
def written(request, maker, tmp_path: Path) -> tuple[str, Path]:
    kind = request.param
    if kind in OPTIONAL_PACKAGES:
        pytest.importorskip(OPTIONAL_PACKAGES[kind])
    assert (TESTS / "data" / kind / "make.py").is_file(), f"no fixture writer for {kind}"
    root = tmp_path / kind
    maker(kind).write(root)
    return kind, root


@pytest.fixture
def opened(written) -> tuple[str, CloudDataset]:
    kind, root = written
    return kind, open_dataset(root, canonical=True)


def _check_image_and_bands(kind: str, sample: Sample) -> tuple[int, ...]:
    """Image dtype and layout, band names; returns the per-pixel grid shape (T, H, W) or (H, W)."""
    image = sample["image"]
    assert isinstance(image, np.ndarray) and image.dtype == np.float32
    assert image.ndim == (4 if kind in TIME_SERIES else 3)
    channels = image.shape[-3]
    bands = sample["bands"]
    assert isinstance(bands, tuple) and len(bands) == channels
    assert all(canonical_band_name(b) == b for b in bands)
    finite = image[np.isfinite(image)]
    assert finite.size and 0.0 <= float(np.median(finite)) <= 1.5  # reflectance, not DN
    return image.shape[:-3] + image.shape[-2:]


def _check_masks(sample: Sample, grid: tuple[int, ...]) -> None:
    mask, valid, canonical = sample["mask"], sample["valid"], sample["mask_canonical"]
    assert isinstance(valid, np.ndarray) and valid.dtype == np.bool_ and valid.shape == grid
    if mask is not None:
        assert mask.dtype.kind in "iu" and mask.shape == grid
    if canonical is not None:
        assert canonical.dtype == np.uint8 and canonical.shape == grid
        assert set(np.unique(canonical).tolist()) <= CANONICAL_VALUES
        assert not (valid & (canonical == NODATA)).any()  # valid pixels have a label


def test_detected_as_its_own_kind_and_opened(written) -> None:
    kind, root = written
    assert dataset_class(kind).detect(root)
    assert detect_dataset(root) == kind
    dataset = open_dataset(root)
    assert isinstance(dataset, dataset_class(kind)) and dataset.name == kind
    assert len(dataset) > 0 and dataset.summary()["samples"] == len(dataset)


def test_samples_follow_the_contract(opened) -> None:
    kind, dataset = opened
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        assert set(SAMPLE_KEYS) | {"mask_canonical"} <= set(sample)
        grid = _check_image_and_bands(kind, sample)
        _check_masks(sample, grid)
        assert isinstance(sample["meta"], dict) and sample["meta"]
        assert (sample["crs"] is None) == (sample["transform"] is None)
    np.testing.assert_array_equal(dataset[-1]["image"], dataset[len(dataset) - 1]["image"])
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_plot_returns_a_figure(opened) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    _, dataset = opened
    figure = dataset.plot(0, layers=None, stretch="fixed")
    assert isinstance(figure, Figure) and figure.axes
    with_valid = dataset.plot(0, layers=["valid"], stretch="percentile")
    assert len(with_valid.axes) > len(figure.axes)
