"""Training: augmentations, losses, data, architectures, checkpoints, and tiny end-to-end runs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytest.importorskip("onnx")

from s2clouds.datasets.base import CloudDataset, Sample  # noqa: E402
from s2clouds.datasets.registry import open_dataset  # noqa: E402
from s2clouds.errors import BandError, DatasetError, ModelError, OutputError, UnknownNameError  # noqa: E402
from s2clouds.models.base import ModelContext  # noqa: E402
from s2clouds.models.onnx_model import OnnxModel  # noqa: E402
from s2clouds.train import loop  # noqa: E402
from s2clouds.train.architectures import (  # noqa: E402
    ARCHITECTURES,
    build_model,
    load_cloudsen12_checkpoint,
    load_trained,
    strip_prefixes,
)
from s2clouds.train.augment import (  # noqa: E402
    Augmentation,
    flip_rotate,
    jitter_radiometry,
    random_crop,
)
from s2clouds.train.data import holdout_split, sample_arrays  # noqa: E402
from s2clouds.train.export import export_onnx  # noqa: E402
from s2clouds.train.loop import METRIC_COLUMNS, TrainConfig, train  # noqa: E402
from s2clouds.train.losses import (  # noqa: E402
    CrossEntropyDiceLoss,
    class_weights_from_counts,
)

BANDS = ("B02", "B03", "B04", "B08", "B11")
RGBN = ("B02", "B03", "B04", "B08")


class ToyClouds(CloudDataset):
    """In-test dataset: 64 x 64 vegetation with one bright cloud square and its dark shadow
    strip below it, and two invalid columns (samples follow the dataset contract)."""

    name: ClassVar[str] = "toy"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(self, n: int = 8, size: int = 64, seed: int = 0) -> None:
        self.n, self.size, self.seed = n, size, seed

    @classmethod
    def detect(cls, path: Path) -> bool:
        return False

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Sample:
        rng = np.random.default_rng([self.seed, self._check_index(index)])
        s = self.size
        base = np.array([0.05, 0.07, 0.05, 0.3, 0.15], np.float32)[:, None, None]
        image = base + rng.normal(0, 0.01, (len(BANDS), s, s)).astype(np.float32)
        mask = np.zeros((s, s), np.uint8)
        r, c = (int(v) for v in rng.integers(0, s - 28, 2))
        mask[r : r + 20, c : c + 20] = 1
        image[:, r : r + 20, c : c + 20] = 0.6
        mask[r + 22 : r + 26, c : c + 20] = 3
        image[:, r + 22 : r + 26, c : c + 20] *= 0.3
        valid = np.ones((s, s), bool)
        valid[:, :2] = False
        return {
            "image": image,
            "mask": mask,
            "mask_canonical": mask,
            "valid": valid,
            "bands": BANDS,
            "crs": None,
            "transform": None,
            "meta": {"id": f"toy{index}"},
        }


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------- augmentations
def test_flips_and_rotations_move_image_and_mask_together() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (6, 9)).astype(np.uint8)
    image = np.stack([target * 0.1, target * 0.2]).astype(np.float32)
    for turns in range(4):
        for flip in (False, True):
            out_image, out_target = flip_rotate(image, target, turns, flip)
            np.testing.assert_array_equal(out_image[0], out_target * np.float32(0.1))
            assert out_image.flags.c_contiguous and out_target.flags.c_contiguous
    rotated = flip_rotate(image, target, 1, False)[1]
    np.testing.assert_array_equal(rotated, np.rot90(target))


def test_crops_stay_in_the_labelled_area_and_small_samples_are_padded() -> None:
    rng = np.random.default_rng(1)
    target = np.full((100, 100), 255, np.uint8)
    target[70:90, 10:30] = 2
    image = np.ones((2, 100, 100), np.float32)
    for _ in range(20):
        _, crop = random_crop(image, target, 32, rng)
        assert crop.shape == (32, 32) and (crop == 2).any()
    small_image, small_target = random_crop(image[:, :10, :20], target[:10, :20], 32, rng)
    assert small_image.shape == (2, 32, 32) and np.isnan(small_image[:, 20:, :]).all()
    assert (small_target[10:, :] == 255).all()


def test_radiometric_jitter_is_seeded_small_and_keeps_nodata() -> None:
    image = np.full((5, 4, 4), 0.2, np.float32)
    image[:, 0, 0] = np.nan
    a = jitter_radiometry(image, BANDS, np.random.default_rng(3), brightness=0.1, haze=0.02)
    b = jitter_radiometry(image, BANDS, np.random.default_rng(3), brightness=0.1, haze=0.02)
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[:, 0, 0]).all()
    assert np.nanmax(np.abs(a - 0.2)) < 0.2 * 0.14 + 0.02
    # haze is strongest in blue, weakest in SWIR
    none = jitter_radiometry(image, BANDS, np.random.default_rng(3), brightness=0.0, haze=0.05)
    assert none[0, 1, 1] > none[4, 1, 1]


def test_augmentation_is_reproducible_from_the_seed() -> None:
    sample = ToyClouds()[0]
    image, target = sample_arrays(sample, RGBN)
    augment = Augmentation(crop=32)
    one = augment(image, target, RGBN, np.random.default_rng(7))
    two = augment(image, target, RGBN, np.random.default_rng(7))
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[0].shape == (4, 32, 32)


# ------------------------------------------------------------------------- losses
def test_loss_ignores_255_and_rewards_correct_predictions() -> None:
    target = torch.tensor([[[0, 1], [3, 255]]])
    good = torch.full((1, 4, 2, 2), -5.0)
    for r, c, k in ((0, 0, 0), (0, 1, 1), (1, 0, 3)):
        good[0, k, r, c] = 5.0
    loss = CrossEntropyDiceLoss([1.0, 1.0, 1.0, 1.0])
    changed = good.clone()
    changed[0, :, 1, 1] = torch.tensor([9.0, -9.0, 3.0, 0.0])  # the ignored pixel
    assert float(loss(good, target)) == pytest.approx(float(loss(changed, target)))
    assert float(loss(good, target)) < 0.05 < float(loss(-good, target))
    all_ignored = torch.full((1, 2, 2), 255)
    assert float(loss(good, all_ignored)) == 0.0


def test_class_weights_favour_rare_classes() -> None:
    weights = class_weights_from_counts([9000, 900, 0, 100])
    assert weights[3] > weights[1] > weights[0] and weights[2] == 1.0
    assert weights[[0, 1, 3]].mean() == pytest.approx(1.0)


# ------------------------------------------------------------------------- data
def test_samples_select_bands_by_name_and_mark_unusable_pixels() -> None:
    sample = ToyClouds()[1]
    sample["image"][0, 10, 10] = np.nan  # B02, selected
    sample["image"][2, 20, 20] = np.nan  # B04, not selected: no effect
    image, target = sample_arrays(sample, ("B08", "B02"))
    np.testing.assert_array_equal(image[0], sample["image"][3])
    assert (target[:, :2] == 255).all() and target[10, 10] == 255 and target[20, 20] != 255
    with pytest.raises(BandError, match="B12"):
        sample_arrays(sample, ("B02", "B12"))
    with pytest.raises(DatasetError, match="canonical=True"):
        sample_arrays({**sample, "mask_canonical": None}, RGBN)


def test_holdout_split_is_seeded_and_disjoint() -> None:
    train_idx, val_idx = holdout_split(20, 0.1, seed=3)
    assert len(val_idx) == 2 and not set(train_idx) & set(val_idx)
    assert holdout_split(20, 0.1, seed=3) == (train_idx, val_idx)
    assert holdout_split(5, 0.1, seed=3) == ([0, 1, 2, 3, 4], [])


# ------------------------------------------------------------------------- architectures
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architectures_give_full_resolution_logits(name: str) -> None:
    model = build_model(name, 5).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 5, 64, 96))
    assert out.shape == (1, 4, 64, 96)


def test_tiny_unet_is_small() -> None:
    params = sum(p.numel() for p in build_model("tiny-unet", 4).parameters())
    assert params < 50_000


def test_cloudsen12_lightning_checkpoint_loads_strictly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = build_model("unet-mobilenetv2", 13).eval()
    state = {f"model.{k}": v for k, v in reference.state_dict().items()}
    path = tmp_path / "UNetMobV2.ckpt"
    torch.save({"epoch": 10, "state_dict": state, "hyper_parameters": {"lr": 1e-3}}, path)
    loaded = load_cloudsen12_checkpoint(path, [f"B{i}" for i in range(1, 13)] + ["B8A"])
    x = torch.rand(1, 13, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x))
    with pytest.raises(ModelError, match="same architecture and number of bands"):
        load_cloudsen12_checkpoint(path, RGBN)
    del state["model.segmentation_head.0.bias"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(ModelError, match=r"missing 1: segmentation_head.0.bias"):
        load_cloudsen12_checkpoint(path, [f"B{i}" for i in range(1, 13)] + ["B8A"])


def test_prefixes_are_stripped_repeatedly() -> None:
    assert list(strip_prefixes({"module.model.encoder.w": 1, "decoder.b": 2})) == [
        "encoder.w",
        "decoder.b",
    ]


# ------------------------------------------------------------------------- end to end
class Interrupted(Exception):
    """Stands for a run killed after its second epoch was saved."""


@pytest.mark.slow  # 10-45 s: a seeded run, its resume and export
def test_tiny_training_run_is_seeded_resumable_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(
        architecture="tiny-unet",
        bands=RGBN,
        epochs=3,
        batch_size=4,
        lr=5e-3,
        seed=1,
        augmentation=Augmentation(crop=48),
    )
    options: dict[str, Any] = {"progress": False, "curve_every": 10}
    run = tmp_path / "run"
    write_metrics = loop.write_metrics

    def write_then_die(path: Path, history: list[dict[str, float]]) -> None:
        write_metrics(path, history)
        if len(history) == 2:
            raise Interrupted

    monkeypatch.setattr(loop, "write_metrics", write_then_die)
    with pytest.raises(Interrupted):
        train(ToyClouds(), config, out_dir=run, **options)
    monkeypatch.undo()
    assert [int(r["epoch"]) for r in read_metrics(run)] == [1, 2]
    assert not (run / "curve.png").exists()

    best = train(ToyClouds(), config, out_dir=run, **options)
    assert best == run / "best.pt" and (run / "last.pt").is_file()
    assert (run / "curve.png").stat().st_size > 5_000
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and list(rows[0]) == list(METRIC_COLUMNS)
    assert 0.0 <= float(rows[2]["boa_cloud"]) <= 1.0
    assert float(rows[2]["train_loss"]) < float(rows[0]["train_loss"])

    # an uninterrupted run with the same seed gives the same numbers
    again = tmp_path / "again"
    train(ToyClouds(), config, out_dir=again, **options)
    assert read_metrics(again) == [
        {**r, "seconds": a["seconds"]} for r, a in zip(rows, read_metrics(again), strict=True)
    ]

    _, spec, checkpoint = load_trained(best)
    assert spec.bands == RGBN and spec.architecture == "tiny-unet"
    assert spec.mean[3] > spec.mean[0]  # NIR is brighter than blue in the toy scenes
    best_epoch = max(rows, key=lambda r: float(r["score"]))["epoch"]
    assert checkpoint["epoch"] == int(best_epoch)

    with pytest.raises(OutputError, match="resume=False"):
        train(ToyClouds(), replace(config, bands=BANDS), out_dir=run, **options)

    result = export_onnx(
        best, tmp_path / "toy.onnx", quantize=True, name="toy-clouds", licence="CC0-1.0"
    )
    assert result.max_abs_diff < 1e-4 and result.quantized_max_diff is not None
    model = OnnxModel(result.onnx_path)
    assert model.spec == result.spec and model.spec.sha256 is not None
    assert (model.name, model.spec.licence) == ("toy-clouds", "CC0-1.0")
    image, _ = sample_arrays(ToyClouds(seed=9)[0], RGBN)
    probs = model.predict_proba(image, ModelContext())
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-3)


def test_training_on_cloudsen12_fixture_files(
    maker: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    root = maker("cloudsen12").write(tmp_path / "cloudsen12")
    data = open_dataset(root, "cloudsen12", split="train", level="L2A")
    val = open_dataset(root, "cloudsen12", split="val", level="L2A")
    config = TrainConfig(bands=RGBN, epochs=1, batch_size=2, augmentation=Augmentation(crop=64))
    best = train(
        data, config, val_dataset=val, out_dir=tmp_path / "run", progress=False, curve_every=10
    )
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 1 and rows[0]["val_loss"] != ""
    _, spec, _ = load_trained(best)
    assert "cloudsen12" in spec.training_data
    # the fixture's L2A reflectance is (DN - 500) / 10000 of levels from 500 up
    assert 0.05 < spec.mean[0] < 0.2


def test_unknown_architecture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="tiny-unet"):
        train(ToyClouds(), TrainConfig(architecture="resnet", epochs=1), out_dir=tmp_path)
