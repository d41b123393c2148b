"""Protocols: CloudSEN12 tasks and rules, tag strata, centre pixels, land-cover OA/AA/kappa."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from s2clouds.benchmark import (
    BenchmarkError,
    CloudMaskCatalogueProtocol,
    CloudSEN12Protocol,
    Sen12msLandCoverProtocol,
    SpatioTemporalProtocol,
    get_protocol,
    protocol_from_rows,
    tasks_for_scheme,
)
from s2clouds.benchmark.protocols import (
    CLOUDSEN12_PUBLISHED,
    SEN12MS_PAPER_MERGE,
    FalseCloudProtocol,
    published_median_boa,
)
from s2clouds.errors import LabelSchemeError, ShapeMismatchError, UnknownNameError
from s2clouds.labels import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD, to_canonical

C, K, N, S = CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW


def mask(*rows: list[int]) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


def as_csv_strings(rows: list[dict]) -> list[dict]:
    """What csv.DictReader gives back: every cell a string, undefined values empty."""
    return [
        {k: "" if isinstance(v, float) and np.isnan(v) else str(v) for k, v in r.items()}
        for r in rows
    ]


# --------------------------------------------------------------------------- CloudSEN12
def test_cloudsen12_tasks_per_image_by_hand() -> None:
    truth = mask([C, C, K, N], [S, S, C, K])
    pred = mask([C, K, K, C], [S, C, C, S])
    protocol = CloudSEN12Protocol()
    protocol.update("m", pred, truth, meta={"id": "a"})
    row = protocol.results()[0]
    assert row["image_id"] == "a" and row["n_1_1"] == 1 and row["n_3_3"] == 1
    # cloud: truth K,N,K (3) ; predicted K,K ; TP 1 (pixel 0,2), FP 1 (0,1), FN 2
    assert row["pa_cloud"] == pytest.approx(1 / 3)
    assert row["ua_cloud"] == pytest.approx(1 / 2)
    assert row["boa_cloud"] == pytest.approx((1 / 3 + 4 / 5) / 2)
    # shadow: truth 2, predicted 2, TP 1
    assert row["pa_shadow"] == pytest.approx(1 / 2) and row["ua_shadow"] == pytest.approx(1 / 2)
    # valid: positives are contaminated pixels (K, N, S): truth 5, predicted 4, TP 3
    assert row["pa_valid"] == pytest.approx(3 / 5) and row["ua_valid"] == pytest.approx(3 / 4)
    assert row["boa_valid"] == pytest.approx((3 / 5 + 2 / 3) / 2)


def test_cloudsen12_images_without_positives_leave_pa_and_boa_statistics() -> None:
    protocol = CloudSEN12Protocol()
    clear = np.zeros((4, 4), dtype=np.uint8)
    cloudy = np.full((4, 4), K, dtype=np.uint8)
    cloudy[0] = C
    protocol.update("m", cloudy, cloudy, meta={"id": "perfect"})
    protocol.update("m", clear, clear, meta={"id": "clear-right"})  # PA, UA, BOA undefined
    false_alarm = clear.copy()
    false_alarm[0, 0] = K
    protocol.update("m", false_alarm, clear, meta={"id": "clear-false-alarm"})  # UA = 0
    rows = {r["image_id"]: r for r in protocol.results()}
    assert np.isnan(rows["clear-right"]["pa_cloud"]) and np.isnan(rows["clear-right"]["ua_cloud"])
    assert np.isnan(rows["clear-false-alarm"]["boa_cloud"])
    assert rows["clear-false-alarm"]["ua_cloud"] == 0.0
    cloud = next(r for r in protocol.summary_rows() if r["task"] == "cloud")
    assert cloud["n_images"] == 3 and cloud["n_boa"] == 1 and cloud["median_boa"] == 1.0
    assert cloud["n_pa"] == 1 and cloud["pa_high"] == 1.0
    assert cloud["n_ua"] == 2 and cloud["ua_low"] == 0.5 and cloud["ua_high"] == 0.5


def test_cloudsen12_summary_bins_and_medians() -> None:
    protocol = CloudSEN12Protocol()
    # 10 cloud pixels each; the masker finds 0, 1, 5, 10 of them and nothing else
    for found in (0, 1, 5, 10):
        truth = np.zeros(20, dtype=np.uint8)
        truth[:10] = K
        pred = np.zeros(20, dtype=np.uint8)
        pred[:found] = K
        protocol.update("m", pred, truth)
    cloud = next(r for r in protocol.summary_rows() if r["task"] == "cloud")
    # PA = 0, 0.1, 0.5, 1 -> low (< 0.1): 1, mid (0.1 <= x <= 0.9): 2, high: 1
    assert (cloud["pa_low"], cloud["pa_mid"], cloud["pa_high"]) == (0.25, 0.5, 0.25)
    assert cloud["median_boa"] == pytest.approx(np.median([0.5, 0.55, 0.75, 1.0]))
    assert cloud["n_ua"] == 3 and cloud["ua_high"] == 1.0  # no prediction -> UA undefined


def test_cloudsen12_tasks_follow_what_a_scheme_can_produce() -> None:
    assert tasks_for_scheme("s2cloudless") == ("cloud",)
    assert tasks_for_scheme("qa60") == ("cloud",)
    assert tasks_for_scheme("sen2cor") == ("cloud", "shadow", "valid")
    protocol = get_protocol(
        "cloudsen12", masker_tasks={"s2cloudless": tasks_for_scheme("s2cloudless")}
    )
    assert isinstance(protocol, CloudSEN12Protocol)
    truth = mask([C, S], [K, N])
    protocol.update("s2cloudless", truth, truth)
    protocol.update("fmask", truth, truth)
    tasks = [(r["masker"], r["task"]) for r in protocol.summary_rows()]
    assert tasks == [
        ("s2cloudless", "cloud"),
        ("fmask", "cloud"),
        ("fmask", "shadow"),
        ("fmask", "valid"),
    ]
    row = protocol.results()[0]
    assert row["tasks"] == "cloud" and np.isnan(row["boa_shadow"]) and row["boa_cloud"] == 1.0
    with pytest.raises(BenchmarkError, match="unknown CloudSEN12 tasks"):
        protocol.set_tasks("x", ["haze"])


def test_cloudsen12_published_values_are_kept_as_data() -> None:
    names = [p.masker for p in CLOUDSEN12_PUBLISHED]
    assert names == ["UnetMobV2", "Fmask", "KappaMask L1C", "s2cloudless", "Sen2Cor", "QA60"]
    assert published_median_boa("kappamask_l1c", "shadow") == 0.738
    assert published_median_boa("Sen2Cor", "valid") == 0.674
    assert published_median_boa("layer:fmask", "cloud") == 0.841  # stored layers too
    assert published_median_boa("layer:kappamask_L1C", "valid") == 0.812
    assert published_median_boa("layer:QA60", "cloud") == 0.582
    assert np.isnan(published_median_boa("layer:kappamask_L2A", "cloud"))
    assert np.isnan(published_median_boa("s2cloudless", "shadow"))
    assert np.isnan(published_median_boa("my-model", "cloud"))
    reference = CloudSEN12Protocol().reference_rows()
    unet = {r["task"]: r["median_boa"] for r in reference if r["masker"] == "UnetMobV2"}
    assert unet == {"cloud": 0.920, "shadow": 0.890, "valid": 0.913}
    assert "Aybar" in CloudSEN12Protocol.source


def test_cloudsen12_rebuilds_from_csv_rows() -> None:
    rng = np.random.default_rng(0)
    protocol = CloudSEN12Protocol(masker_tasks={"qa60": ["cloud"]})
    for masker in ("fmask", "qa60"):
        for i in range(5):
            truth = rng.integers(0, 4, (16, 16), dtype=np.uint8)
            pred = np.where(rng.random(truth.shape) < 0.7, truth, 0).astype(np.uint8)
            valid = rng.random(truth.shape) < 0.9
            protocol.update(masker, pred, truth, valid, {"id": f"roi{i}"})
    rebuilt = protocol_from_rows(as_csv_strings(protocol.results()))
    assert isinstance(rebuilt, CloudSEN12Protocol)
    np.testing.assert_equal(rebuilt.summary_rows(), protocol.summary_rows())
    assert rebuilt.confusion("fmask") == protocol.confusion("fmask")


def test_cloudsen12_on_real_on_cloud_n_labels(real_data: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    protocol = CloudSEN12Protocol()
    for chip in ("oncloudn_chip1", "oncloudn_chip2", "oncloudn_chip3"):
        folder = real_data / chip
        with rasterio.open(folder / "label.tif") as src:
            truth = to_canonical(src.read(1), "binary")
        rgb = np.stack([rasterio.open(folder / f"{b}.tif").read(1) for b in ("B02", "B03", "B04")])
        bright = np.where(rgb.astype(np.float32).mean(axis=0) / 10_000 > 0.3, K, C).astype(np.uint8)
        protocol.update("truth", truth, truth, meta={"id": chip})
        protocol.update("all-clear", np.zeros_like(truth), truth, meta={"id": chip})
        protocol.update("bright", bright, truth, meta={"id": chip})
    rows = {(r["masker"], r["task"]): r for r in protocol.summary_rows()}
    assert rows["truth", "cloud"]["median_boa"] == 1.0
    assert (
        rows["all-clear", "cloud"]["median_boa"] == 0.5
        and rows["all-clear", "cloud"]["pa_low"] == 1.0
    )
    assert rows["all-clear", "cloud"]["n_ua"] == 0  # nothing predicted: UA undefined
    assert rows["truth", "shadow"]["n_boa"] == 0  # On Cloud N has no shadow class
    assert 0.6 < rows["bright", "cloud"]["median_boa"] < 1.0
    assert rows["bright", "cloud"]["ua_high"] == 1.0  # bright pixels are cloud in these chips


# --------------------------------------------------------------------------- Cloud Mask Catalogue
def test_cmc_strata_by_tags_and_shadow_skipping() -> None:
    protocol = CloudMaskCatalogueProtocol()
    truth = mask([C, K, S, S])
    good = mask([C, K, S, S])
    bad_shadow = mask([C, K, C, C])
    protocol.update(
        "m", good, truth, meta={"id": "1", "forest": True, "snow": False, "date": "2018-01-01"}
    )
    protocol.update(
        "m", bad_shadow, truth, meta={"id": "2", "forest": True, "shadows_marked": False}
    )
    protocol.update(
        "m", bad_shadow, truth, meta={"id": "3", "forest": False, "snow": np.bool_(True)}
    )
    rows = {(r["task"], r["stratum"]): r for r in protocol.summary_rows()}
    assert protocol.strata("m") == ["all", "forest", "snow"]
    assert rows["cloud", "all"]["n_images"] == 3 and rows["cloud", "all"]["pa"] == 1.0
    assert rows["shadow", "all"]["n_images"] == 2  # image 2: shadows not marked
    assert rows["shadow", "all"]["pa"] == pytest.approx(2 / 4)
    assert rows["shadow", "forest"]["n_images"] == 1 and rows["shadow", "forest"]["pa"] == 1.0
    assert rows["shadow", "snow"]["pa"] == 0.0
    per_image = {r["image_id"]: r for r in protocol.results()}
    assert np.isnan(per_image["2"]["boa_shadow"]) and per_image["2"]["boa_cloud"] == 1.0
    assert per_image["1"]["tag_forest"] is True and "tag_date" not in per_image["1"]
    rebuilt = protocol_from_rows(as_csv_strings(protocol.results()))
    np.testing.assert_equal(rebuilt.summary_rows(), protocol.summary_rows())


# --------------------------------------------------------------------------- spatio-temporal
def test_spatiotemporal_scores_only_the_centre_six_by_six() -> None:
    protocol = SpatioTemporalProtocol()
    pred = np.full((42, 42), K, dtype=np.uint8)
    pred[18:24, 18:24] = C
    pred[18, 18] = S
    protocol.update("m", pred, np.uint8(C), meta={"id": "t0"})
    counts = protocol.confusion("m").counts
    assert counts.sum() == 36
    assert counts[C, C] == 35 and counts[C, S] == 1
    assert protocol.results()[0]["oa"] == pytest.approx(35 / 36)
    # a series (T, H, W) with one label per timestamp
    series = np.zeros((3, 42, 42), dtype=np.uint8)
    protocol.update("series", series, np.array([C, K, C], dtype=np.uint8))
    assert protocol.confusion("series").counts[K, C] == 36
    with pytest.raises(ShapeMismatchError, match="centre"):
        protocol.update("m", np.zeros((4, 4), np.uint8), np.uint8(0))


def test_spatiotemporal_own_six_classes_and_summary() -> None:
    protocol = get_protocol("spatiotemporal", classes="spatiotemporal")
    assert protocol.class_names[3] == "haze" and len(protocol.codes) == 6
    truth = np.zeros((42, 42), dtype=np.uint8)
    truth[18:24, 18:21] = 3
    pred = truth.copy()
    pred[18:24, 18] = 5
    protocol.update("m", pred, truth)
    rows = {r["class"]: r for r in protocol.summary_rows()}
    assert rows["haze"]["pa"] == pytest.approx(2 / 3) and rows["haze"]["ua"] == 1.0
    assert np.isnan(rows["snow"]["pa"]) and rows["snow"]["ua"] == 0.0
    assert rows["all"]["oa"] == pytest.approx(30 / 36)
    rebuilt = protocol_from_rows(as_csv_strings(protocol.results()))
    assert rebuilt.codes == list(range(6))
    np.testing.assert_equal(rebuilt.summary_rows(), protocol.summary_rows())


# --------------------------------------------------------------------------- SEN12MS
def test_sen12ms_oa_aa_kappa_match_sklearn_with_ignore_and_merge() -> None:
    rng = np.random.default_rng(3)
    codes = np.array([1, 3, 10, 20, 25, 30, 35, 36, 40], dtype=np.uint8)
    truth = rng.choice(codes, (32, 32)).astype(np.uint8)
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.choice(codes, truth.shape)).astype(
        np.uint8
    )
    truth[0, :8] = NODATA
    protocol = Sen12msLandCoverProtocol(merge=SEN12MS_PAPER_MERGE)
    assert 25 not in protocol.codes and 36 not in protocol.codes
    protocol.update("net", pred, truth, meta={"id": "rome"})
    merge = np.arange(256)
    for source, target in SEN12MS_PAPER_MERGE.items():
        merge[source] = target
    keep = truth != NODATA
    t, p = merge[truth[keep]], merge[pred[keep]]
    summary = protocol.summary_rows()[0]
    assert summary["oa"] == pytest.approx(np.mean(t == p))
    assert summary["aa"] == pytest.approx(balanced_accuracy_score(t, p))
    assert summary["kappa"] == pytest.approx(cohen_kappa_score(t, p))
    assert summary["n_pixels"] == keep.sum()
    rebuilt = protocol_from_rows(as_csv_strings(protocol.results()))
    np.testing.assert_equal(rebuilt.summary_rows(), protocol.summary_rows())


def test_sen12ms_refuses_unknown_codes() -> None:
    protocol = get_protocol("sen12ms")
    with pytest.raises(LabelSchemeError, match=r"\[7\].*merge="):
        protocol.update("m", np.array([1, 7], np.uint8), np.array([1, 1], np.uint8))
    with pytest.raises(LabelSchemeError, match="0-255"):
        protocol.update("m", np.array([1, 300]), np.array([1, 1]))
    with pytest.raises(BenchmarkError, match="merge target"):
        Sen12msLandCoverProtocol(merge={5: 99})


# --------------------------------------------------------------------------- registry
def test_get_protocol_by_name_and_alias() -> None:
    assert isinstance(get_protocol("CloudSEN12"), CloudSEN12Protocol)
    assert isinstance(get_protocol("cloud-mask-catalogue"), CloudMaskCatalogueProtocol)
    assert isinstance(get_protocol("temporal"), SpatioTemporalProtocol)
    with pytest.raises(UnknownNameError, match="available: cloudsen12, cmc"):
        get_protocol("l8biome")
    with pytest.raises(UnknownNameError, match="did you mean 'cloudsen12'"):
        get_protocol("cloudsen-12")
    assert isinstance(get_protocol("False-Cloud"), FalseCloudProtocol)  # one name rule
    with pytest.raises(BenchmarkError, match="no results for masker"):
        CloudSEN12Protocol().confusion("fmask")
    with pytest.raises(BenchmarkError, match="mix protocols"):
        protocol_from_rows([{"protocol": "cmc"}, {"protocol": "sen12ms"}])


def test_cmc_reads_tags_nested_as_the_reader_gives_them() -> None:
    protocol = CloudMaskCatalogueProtocol()
    truth = mask([C, K, S, S])
    meta = {"id": "1", "shadows_marked": True, "tags": {"forest/jungle": True, "cirrus": False}}
    protocol.update("m", truth, truth, meta=meta)
    rows = {(r["task"], r["stratum"]): r for r in protocol.summary_rows()}
    assert protocol.strata("m") == ["all", "forest/jungle", "cirrus"]
    assert rows["cloud", "forest/jungle"]["n_images"] == 1
    assert rows["cloud", "cirrus"]["n_images"] == 0 and np.isnan(rows["cloud", "cirrus"]["boa"])


# --------------------------------------------------------------------------- false cloud
def test_false_cloud_rates_on_clear_scenes() -> None:
    protocol = get_protocol("false_cloud")
    truth = mask([C, C, C, C])
    protocol.update("m", mask([C, C, C, C]), truth, meta={"id": "a"})
    protocol.update("m", mask([K, N, S, C]), truth, meta={"id": "b"})
    protocol.update("m", mask([K, C]), mask([C, NODATA]), meta={"id": "c"})
    per_image = {r["image_id"]: r for r in protocol.results()}
    assert per_image["a"]["false_cloud"] == 0.0 and per_image["b"]["false_cloud"] == 0.5
    assert per_image["b"]["false_shadow"] == 0.25 and per_image["b"]["false_any"] == 0.75
    assert per_image["c"]["false_cloud"] == 1.0  # the no-data pixel is not counted
    (row,) = protocol.summary_rows()
    assert row["n_images"] == 3 and row["clear_pixels"] == 9
    assert row["false_cloud"] == pytest.approx(3 / 9) and row["median_image_false_cloud"] == 0.5
    assert row["images_over_1pct"] == pytest.approx(2 / 3)
    rebuilt = protocol_from_rows(as_csv_strings(protocol.results()))
    np.testing.assert_equal(rebuilt.summary_rows(), protocol.summary_rows())
