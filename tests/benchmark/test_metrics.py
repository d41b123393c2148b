"""Metrics from counts: hand-computed cases, 0/0 rules, and scikit-learn on random data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from s2clouds.benchmark import metrics as m
from s2clouds.benchmark.confusion import BenchmarkError, ConfusionMatrix, PerImageConfusion

#: truth rows (negative, positive), prediction columns: TN 50, FP 10, FN 5, TP 35
BINARY = np.array([[50, 10], [5, 35]])


def test_binary_hand_case() -> None:
    assert m.producers_accuracy(BINARY)[1] == pytest.approx(35 / 40)
    assert m.users_accuracy(BINARY)[1] == pytest.approx(35 / 45)
    assert m.omission_error(BINARY)[1] == pytest.approx(5 / 40)
    assert m.commission_error(BINARY)[1] == pytest.approx(10 / 45)
    assert m.f1_score(BINARY)[1] == pytest.approx(70 / 85)
    assert m.iou(BINARY)[1] == pytest.approx(35 / 50)
    assert m.overall_accuracy(BINARY) == pytest.approx(85 / 100)
    assert m.balanced_overall_accuracy(BINARY) == pytest.approx((35 / 40 + 50 / 60) / 2)
    p_e = (60 * 55 + 40 * 45) / 100**2
    assert m.cohens_kappa(BINARY) == pytest.approx((0.85 - p_e) / (1 - p_e))
    scores = m.binary_scores(BINARY)
    assert scores["pa"] == pytest.approx(35 / 40) and scores["ua"] == pytest.approx(35 / 45)


def test_class_reductions_hand_case() -> None:
    counts = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])  # class 2 absent from truth and prediction
    recall = m.recall(counts)
    assert recall[:2] == pytest.approx([3 / 4, 4 / 6]) and np.isnan(recall[2])
    assert m.recall(counts, "macro") == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert m.recall(counts, "micro") == pytest.approx(7 / 10) == m.overall_accuracy(counts)
    assert m.iou(counts, "micro") == pytest.approx(7 / (7 + 3 + 3))
    assert m.average_accuracy(counts) == pytest.approx((3 / 4 + 4 / 6) / 2)


def test_zero_over_zero_is_nan_without_warnings() -> None:
    no_positives = np.array([[90, 10], [0, 0]])
    nothing_predicted = np.array([[90, 0], [10, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(m.producers_accuracy(no_positives)[1])
        assert np.isnan(m.balanced_overall_accuracy(no_positives))
        assert m.users_accuracy(no_positives)[1] == 0.0  # predicted positives, all wrong
        assert np.isnan(m.users_accuracy(nothing_predicted)[1])
        assert m.producers_accuracy(nothing_predicted)[1] == 0.0
        empty = np.zeros((3, 3), dtype=int)
        for value in (m.recall(empty, "macro"), m.overall_accuracy(empty), m.cohens_kappa(empty)):
            assert np.isnan(value)
        assert np.isnan(m.reduce_images(np.array([np.nan, np.nan])))
        assert np.isnan(m.reduce_images(np.array([]), "mean"))


@pytest.fixture(scope="module")
def random_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    truth = rng.integers(0, 5, 20_000)
    pred = np.where(rng.random(truth.size) < 0.6, truth, rng.integers(0, 5, truth.size))
    counts = ConfusionMatrix(5).update(pred, truth).counts
    return pred, truth, counts


@pytest.mark.parametrize("average", [None, "micro", "macro"])
def test_class_metrics_match_sklearn(random_pairs, average) -> None:
    pred, truth, counts = random_pairs
    reduction: m.ClassReduction = "none" if average is None else average
    pairs = [
        (m.recall, sk.recall_score),
        (m.precision, sk.precision_score),
        (m.f1_score, sk.f1_score),
        (m.iou, sk.jaccard_score),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(counts, reduction), theirs(truth, pred, average=average))


def test_omission_and_commission_complement_pa_and_ua(random_pairs) -> None:
    _, _, counts = random_pairs
    np.testing.assert_allclose(m.omission_error(counts), 1 - m.producers_accuracy(counts))
    np.testing.assert_allclose(
        m.commission_error(counts, "macro"), 1 - m.users_accuracy(counts, "macro")
    )


def test_scalar_metrics_match_sklearn(random_pairs) -> None:
    pred, truth, counts = random_pairs
    assert m.average_accuracy(counts) == pytest.approx(sk.balanced_accuracy_score(truth, pred))
    assert m.cohens_kappa(counts) == pytest.approx(sk.cohen_kappa_score(truth, pred))
    assert m.overall_accuracy(counts) == pytest.approx(np.mean(truth == pred))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_macro_skips_undefined_classes_like_sklearn_zero_division_nan() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, 500)  # class 3 never in the truth
    pred = rng.integers(0, 4, 500)  # ... but predicted
    counts = ConfusionMatrix(4).update(pred, truth).counts
    expected = sk.recall_score(truth, pred, average="macro", labels=range(4), zero_division=np.nan)
    assert m.recall(counts, "macro") == pytest.approx(expected)
    assert m.average_accuracy(counts) == pytest.approx(sk.balanced_accuracy_score(truth, pred))


def test_binary_counts_collapse_classes(random_pairs) -> None:
    pred, truth, counts = random_pairs
    positive = [1, 2]
    binary = m.binary_counts(counts, positive)
    t, p = np.isin(truth, positive), np.isin(pred, positive)
    assert binary.tolist() == [[np.sum(~t & ~p), np.sum(~t & p)], [np.sum(t & ~p), np.sum(t & p)]]
    assert m.balanced_overall_accuracy(binary) == pytest.approx(sk.balanced_accuracy_score(t, p))
    assert m.binary_scores(binary)["iou"] == pytest.approx(sk.jaccard_score(t, p))
    with pytest.raises(BenchmarkError, match="subset"):
        m.binary_counts(counts, [7])


def test_stacks_give_per_image_values() -> None:
    rng = np.random.default_rng(8)
    images = PerImageConfusion(4)
    for i in range(6):
        images.update(str(i), rng.integers(0, 4, 300), rng.integers(0, 4 if i else 3, 300))
    stack = images.stack()
    per_image = m.recall(images, "none")
    assert per_image.shape == (6, 4)
    for i in range(6):
        np.testing.assert_allclose(per_image[i], m.recall(stack[i]), equal_nan=True)
    assert np.isnan(per_image[0, 3])  # class 3 absent from image 0's truth
    median = m.reduce_images(per_image, "median")
    np.testing.assert_allclose(median, np.nanmedian(per_image, axis=0))
    np.testing.assert_allclose(m.reduce_images(per_image, "mean"), np.nanmean(per_image, axis=0))
    assert m.defined_count(per_image).tolist() == [6, 6, 6, 5]


def test_median_of_even_count_averages_the_middle_two() -> None:
    assert m.reduce_images([0.2, np.nan, 0.8, 0.4, 0.6]) == pytest.approx(0.5)


def test_bin_shares_use_paper_edges() -> None:
    shares = m.bin_shares([0.05, 0.1, 0.5, 0.9, 0.95, np.nan])
    assert shares == pytest.approx({"low": 0.2, "mid": 0.6, "high": 0.2})
    assert all(np.isnan(v) for v in m.bin_shares([np.nan]).values())


def test_metric_errors_say_what_to_do() -> None:
    with pytest.raises(BenchmarkError, match="binary_counts"):
        m.balanced_overall_accuracy(np.eye(4, dtype=int))
    with pytest.raises(BenchmarkError, match="micro"):
        m.recall(BINARY, "weighted")  # type: ignore[arg-type]
    with pytest.raises(BenchmarkError, match=r"\(\.\.\., n, n\)"):
        m.recall(np.zeros((2, 3), dtype=int))
    with pytest.raises(BenchmarkError, match="median"):
        m.reduce_images([1.0], "max")  # type: ignore[arg-type]
