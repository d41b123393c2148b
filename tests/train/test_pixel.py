"""Training the LightGBM pixel model: pixel draws, weights, a run on synthetic clouds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("lightgbm")

from s2clouds.datasets.synthetic import SyntheticClouds  # noqa: E402
from s2clouds.errors import DatasetError  # noqa: E402
from s2clouds.models.base import ModelContext  # noqa: E402
from s2clouds.models.pixel import PixelModel  # noqa: E402
from s2clouds.train.pixel import (  # noqa: E402
    PixelTrainConfig,
    balanced_draw,
    class_balanced_weights,
    fit_scribbles,
    train_pixel_model,
)

RGBN = ("B02", "B03", "B04", "B08")


def surface(size: int, seed: int) -> np.ndarray:
    """(4, size, size) float32 clear land: vegetation and bare-soil patches with noise."""
    rng = np.random.default_rng(seed)
    veg = np.array([0.03, 0.06, 0.04, 0.32], np.float32)[:, None, None]
    soil = np.array([0.08, 0.11, 0.14, 0.22], np.float32)[:, None, None]
    patches = (np.add.outer(np.sin(np.arange(size) / 7), np.cos(np.arange(size) / 5)) > 0)[None]
    image = np.where(patches, veg, soil) * (1 + 0.08 * rng.standard_normal((4, size, size)))
    return image.astype(np.float32)


def test_draws_are_balanced_over_present_classes_and_skip_unlabelled() -> None:
    target = np.zeros((50, 50), np.uint8)
    target[:5] = 1
    target[-2:] = 255
    picked = balanced_draw(target, 200, np.random.default_rng(0))
    labels = target.ravel()[picked]
    assert 255 not in labels and np.sum(labels == 1) == 100 and np.sum(labels == 0) == 100
    assert balanced_draw(np.full((4, 4), 255, np.uint8), 10, np.random.default_rng(0)).size == 0


def test_weights_make_each_class_count_the_same() -> None:
    labels = np.array([0] * 90 + [3] * 10, np.uint8)
    weights = class_balanced_weights(labels)
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 3].sum())
    assert weights.mean() == pytest.approx(1.0)


def test_a_run_on_synthetic_clouds_saves_a_model_that_finds_cloud_and_shadow(
    tmp_path: Path,
) -> None:
    data = SyntheticClouds([(surface(96, s), RGBN) for s in range(3)], n=24, size=64, seed=0)
    config = PixelTrainConfig(bands=RGBN, rounds=60, pixels_per_sample=1500, threads=1)
    result = train_pixel_model(
        data, out_dir=tmp_path, config=config, progress=False, licence="CC0-1.0"
    )
    assert result.path == tmp_path / "pixel.lgbm" and result.train_pixels > 10_000
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["rounds"] == result.rounds <= 60
    # measured: cloud BOA 0.99, shadow BOA 0.99 on the 10 % hold-out (2 samples)
    assert result.scores["boa_cloud"] > 0.9 and result.scores["boa_shadow"] > 0.75
    model = PixelModel.load(result.path)
    assert model.spec.licence == "CC0-1.0" and "synthetic" in model.spec.training_data
    assert any("rounds" in note for note in model.spec.notes)
    unseen = SyntheticClouds([(surface(96, 7), RGBN)], n=1, size=64, seed=99)[0]
    probs = model.predict_proba(unseen["image"], ModelContext())
    truth = unseen["mask_canonical"]
    cloud_truth, cloud_pred = np.isin(truth, (1, 2)), np.isin(probs.argmax(0), (1, 2))
    assert np.mean(cloud_truth == cloud_pred) > 0.85


def test_unlabelled_data_and_misplaced_scribbles_are_explained() -> None:
    image = surface(32, 0)
    with pytest.raises(DatasetError, match="label some pixels"):
        fit_scribbles(image, np.full((32, 32), 255, np.uint8), RGBN)
    with pytest.raises(DatasetError, match="differ in size"):
        fit_scribbles(image, np.zeros((16, 16), np.uint8), RGBN)


def test_scribble_labels_of_cloudsen12_draw_only_scribbled_pixels(
    maker: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.train.data import SampleSource
    from s2clouds.train.pixel import collect_rows

    root = maker("cloudsen12").write(tmp_path / "cs")
    data = open_dataset(root, "cloudsen12", split="test", level="L1C", label="manual_sc")
    source = SampleSource.of(data, RGBN)
    scribbled = sum(int(np.sum(source.arrays(i)[1] != 255)) for i in range(len(source)))
    rows, labels = collect_rows(source, PixelTrainConfig(bands=RGBN, pixels_per_sample=10**6))
    assert 0 < labels.size == scribbled and set(np.unique(labels)) <= {0, 1, 2, 3}
    assert rows.shape == (labels.size, len(PixelTrainConfig().resolved_features()))
