"""Checkpoints are data, never code: crafted, truncated and garbage checkpoints are refused
with one line, Lightning checkpoints still load, and training checkpoints are written
atomically."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")

from s2clouds.errors import ModelError  # noqa: E402
from s2clouds.train.architectures import (  # noqa: E402
    build_model,
    load_cloudsen12_checkpoint,
    load_trained,
    save_trained,
)
from s2clouds.train.loop import LAST  # noqa: E402

BANDS13 = [f"B{i}" for i in range(1, 13)] + ["B8A"]
Refuse = Callable[[list[str]], str]


class MakesAFolder:
    """A pickle that calls ``os.mkdir`` when loaded without weights_only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (str(self.path),))


def lightning_state() -> dict[str, object]:
    reference = build_model("unet-mobilenetv2", 13)
    return {f"model.{k}": v for k, v in reference.state_dict().items()}


def test_a_crafted_checkpoint_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": MakesAFolder(marker)}, path)
    with pytest.raises(ModelError, match="holds Python objects .*mkdir.* refused"):
        load_cloudsen12_checkpoint(path, BANDS13)
    assert not marker.exists()


def test_lightning_attribute_dict_hyper_parameters_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning stores hyper-parameters as an AttributeDict; lightning is not installed
    here, so a stand-in module plays it while saving."""
    names = [
        "pytorch_lightning",
        "pytorch_lightning.utilities",
        "pytorch_lightning.utilities.parsing",
    ]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = names[-1]
    AttributeDict.__qualname__ = "AttributeDict"
    sys.modules[names[-1]].AttributeDict = AttributeDict  # type: ignore[attr-defined]
    path = tmp_path / "UNetMobV2.ckpt"
    hyper = AttributeDict(lr=1e-3, in_channels=13)
    torch.save({"epoch": 3, "state_dict": lightning_state(), "hyper_parameters": hyper}, path)
    monkeypatch.undo()
    assert load_cloudsen12_checkpoint(path, BANDS13) is not None


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoints_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": lightning_state()}, path)
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x80\x02garbage" * 50, "empty": b""}[
            damage
        ]
    )
    with pytest.raises(ModelError, match="not a readable checkpoint") as info:
        load_cloudsen12_checkpoint(path, BANDS13)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_trained(path)


def test_checkpoints_are_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s2clouds.models.weights import WeightSpec

    model = build_model("tiny-unet", 4)
    spec = WeightSpec(
        name="t",
        architecture="tiny-unet",
        bands=("B02", "B03", "B04", "B08"),
        mean=(0.1,) * 4,
        std=(0.1,) * 4,
    )
    path = save_trained(tmp_path / "best.pt", model, spec)
    before = path.read_bytes()

    def crash(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_trained(path, model, spec)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_resume_from_a_damaged_last_checkpoint(
    tmp_path: Path, maker, refuse: Refuse, frozen, damage: str
) -> None:
    root = maker("cloudsen12").write(tmp_path / "cloudsen12")
    run = tmp_path / "run"
    run.mkdir()
    (run / LAST).write_bytes(b"PK\x03\x04" + b"\0" * 20 if damage == "truncated" else b"junk")
    check = frozen(tmp_path)
    argv = ["train", "--dataset", "cloudsen12", str(root), "-O", "split=train", "-O"]
    argv += ["level=L2A", "--model", "tiny-unet", "--bands", "B02,B03,B04,B08", "--epochs", "1"]
    err = refuse([*argv, "--crop", "64", "--out", str(run), "--quiet"])
    assert "last.pt" in err and "--no-resume" in err
    check()


def test_export_refuses_crafted_checkpoints_and_writing_over_them(
    tmp_path: Path, refuse: Refuse, frozen
) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": "s2clouds-checkpoint/1", "x": MakesAFolder(tmp_path / "pwned")}, evil)
    named_onnx = tmp_path / "run.onnx"  # a checkpoint is any file name
    named_onnx.write_bytes(evil.read_bytes())
    check = frozen(tmp_path)
    assert "holds Python objects" in refuse(["export", str(evil), "-o", str(tmp_path / "m.onnx")])
    assert "is the input file" in refuse(["export", str(named_onnx), "-o", str(named_onnx)])
    check()
    assert not (tmp_path / "pwned").exists()
