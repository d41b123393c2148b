"""Streaming confusion matrices: counting rules, fast vs generic path, merging, serialising."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from s2clouds.benchmark.confusion import BenchmarkError, ConfusionMatrix, PerImageConfusion
from s2clouds.errors import LabelSchemeError, S2CloudsError, ShapeMismatchError


def random_labels(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    labels = rng.integers(0, n, shape, dtype=np.uint8)
    labels[rng.random(shape) < 0.05] = 255
    return labels


def test_hand_counted_case_rows_are_truth_columns_prediction() -> None:
    truth = np.array([[0, 0, 1], [1, 2, 2]], dtype=np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], dtype=np.uint8)
    cm = ConfusionMatrix(3).update(pred, truth)
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert cm.counts.tolist() == expected
    assert cm.counts.dtype == np.int64
    assert cm.total == 6


def test_ignore_value_in_truth_or_prediction_and_valid_mask_are_skipped() -> None:
    truth = np.array([0, 1, 255, 1, 0], dtype=np.uint8)
    pred = np.array([0, 255, 1, 1, 1], dtype=np.uint8)
    valid = np.array([True, True, True, True, False])
    cm = ConfusionMatrix(2).update(pred, truth, valid)
    assert cm.counts.tolist() == [[1, 0], [0, 1]]
    assert cm.pred_ignored == 1  # truth 1 labelled, prediction no data
    generic = ConfusionMatrix(2).update(pred.astype(np.int32), truth.astype(np.int32), valid)
    assert generic == cm


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.int64])
def test_fast_path_matches_generic_path_and_sklearn(dtype: type) -> None:
    rng = np.random.default_rng(1)
    truth, pred = random_labels(rng, (3, 50, 40), 4), random_labels(rng, (3, 50, 40), 4)
    valid = rng.random(truth.shape) < 0.8
    fast = ConfusionMatrix(4).update(pred, truth, valid)
    if np.iinfo(dtype).max >= 255:
        generic = ConfusionMatrix(4).update(pred.astype(dtype), truth.astype(dtype), valid)
        assert generic == fast
    keep = valid & (truth != 255) & (pred != 255)
    reference = confusion_matrix(truth[keep], pred[keep], labels=range(4))
    np.testing.assert_array_equal(fast.counts, reference)


def test_chunking_gives_the_same_counts_as_one_pass() -> None:
    rng = np.random.default_rng(2)
    truth, pred = random_labels(rng, (37, 29), 4), random_labels(rng, (37, 29), 4)
    valid = rng.random(truth.shape) < 0.7
    whole = ConfusionMatrix(4).update(pred, truth, valid)
    tiny = ConfusionMatrix(4, chunk_size=7).update(pred, truth, valid)
    tiny_generic = ConfusionMatrix(4, chunk_size=11).update(
        pred.astype(int), truth.astype(int), valid
    )
    assert tiny == whole == tiny_generic


def test_memmap_input_is_streamed(tmp_path) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "labels.dat"
    data = np.memmap(path, dtype=np.uint8, mode="w+", shape=(2, 64, 64))
    data[:] = rng.integers(0, 4, data.shape, dtype=np.uint8)
    data.flush()
    truth = np.memmap(path, dtype=np.uint8, mode="r", shape=(2, 64, 64))
    cm = ConfusionMatrix(4, chunk_size=1000).update(truth, truth)
    assert cm.total == 2 * 64 * 64
    assert np.count_nonzero(cm.counts - np.diag(np.diag(cm.counts))) == 0


def test_bool_masks_count_as_two_classes() -> None:
    truth = np.array([True, True, False, False])
    pred = np.array([True, False, False, True])
    assert ConfusionMatrix(2).update(pred, truth).counts.tolist() == [[1, 1], [1, 1]]


def test_values_outside_the_classes_are_refused_with_a_fix() -> None:
    truth = np.array([0, 1, 7], dtype=np.uint8)
    pred = np.array([0, 1, 1], dtype=np.uint8)
    with pytest.raises(LabelSchemeError, match=r"\[7\].*to_canonical"):
        ConfusionMatrix(4).update(pred, truth)
    with pytest.raises(LabelSchemeError, match=r"\[-1\]"):
        ConfusionMatrix(4).update(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(LabelSchemeError, match=r"\[255\]"):
        ConfusionMatrix(4, ignore_index=None).update(
            np.array([0, 255], np.uint8), np.array([0, 1], np.uint8)
        )


def test_invalid_pixels_with_bad_values_are_not_reported() -> None:
    truth = np.array([0, 9], dtype=np.uint8)
    cm = ConfusionMatrix(4, ignore_index=None).update(truth, truth, np.array([True, False]))
    assert cm.total == 1


def test_input_errors_are_s2clouds_errors() -> None:
    with pytest.raises(ShapeMismatchError, match="one grid"):
        ConfusionMatrix(4).update(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(ShapeMismatchError, match="valid mask"):
        ConfusionMatrix(4).update(np.zeros(3, np.uint8), np.zeros(3, np.uint8), np.ones(2, bool))
    with pytest.raises(LabelSchemeError, match="integer"):
        ConfusionMatrix(4).update(np.zeros(3), np.zeros(3))
    with pytest.raises(BenchmarkError, match="ignore_index"):
        ConfusionMatrix(4, ignore_index=2)
    with pytest.raises(S2CloudsError):
        ConfusionMatrix(0)


def test_merge_and_add_equal_counting_everything_at_once() -> None:
    rng = np.random.default_rng(4)
    a_t, a_p, b_t, b_p = (random_labels(rng, (20, 20), 4) for _ in range(4))
    a, b = ConfusionMatrix(4).update(a_p, a_t), ConfusionMatrix(4).update(b_p, b_t)
    both = ConfusionMatrix(4).update(np.stack([a_p, b_p]), np.stack([a_t, b_t]))
    total = a + b
    assert total == both
    assert a.total + b.total == both.total  # a and b unchanged by +
    a += b
    assert a == both
    with pytest.raises(BenchmarkError, match="same protocol"):
        a.merge(ConfusionMatrix(3))


def test_serialised_matrix_round_trips_through_json() -> None:
    rng = np.random.default_rng(5)
    cm = ConfusionMatrix(4).update(random_labels(rng, (9, 9), 4), random_labels(rng, (9, 9), 4))
    again = ConfusionMatrix.from_dict(json.loads(json.dumps(cm.to_dict())))
    assert again == cm
    assert ConfusionMatrix.from_counts(cm.counts).counts.tolist() == cm.counts.tolist()
    with pytest.raises(BenchmarkError, match="to_dict"):
        ConfusionMatrix.from_dict({"counts": []})
    with pytest.raises(BenchmarkError, match="square"):
        ConfusionMatrix.from_counts(np.zeros((2, 3), dtype=int))


def test_per_image_collection_keeps_one_matrix_per_image() -> None:
    rng = np.random.default_rng(6)
    images = PerImageConfusion(4)
    labels = {
        name: (random_labels(rng, (8, 8), 4), random_labels(rng, (8, 8), 4)) for name in "abc"
    }
    for name, (pred, truth) in labels.items():
        images.update(name, pred[:4], truth[:4])
        images.update(name, pred[4:], truth[4:])  # a second tile of the same image adds up
    assert images.ids == ["a", "b", "c"] and len(images) == 3 and "b" in images
    stack = images.stack()
    assert stack.shape == (3, 4, 4)
    for index, (pred, truth) in enumerate(labels.values()):
        np.testing.assert_array_equal(stack[index], ConfusionMatrix(4).update(pred, truth).counts)
    np.testing.assert_array_equal(images.pooled().counts, stack.sum(axis=0))
    assert images.stack(["c"]).shape == (1, 4, 4)
    assert PerImageConfusion(4).stack().shape == (0, 4, 4)
    again = PerImageConfusion.from_dict(json.loads(json.dumps(images.to_dict())))
    np.testing.assert_array_equal(again.stack(), stack)
    merged = PerImageConfusion(4).merge(images).merge(images)
    np.testing.assert_array_equal(merged.stack(), 2 * stack)
    with pytest.raises(KeyError):
        images["missing"]
