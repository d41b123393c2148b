"""Pseudo-labels where maskers agree, the cached dataset, and the training-set script."""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.datasets.base import SAMPLE_KEYS
from s2clouds.datasets.chips import ChipFolders
from s2clouds.errors import DatasetError, ModelError, UnknownNameError
from s2clouds.labels import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD
from s2clouds.models.base import N_CLASSES, CloudModel, ModelContext
from s2clouds.train.pseudolabels import (
    PseudoLabelled,
    agree_with_reference,
    combine_votes,
    labels_from_reference,
    pseudo_label,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_training_set.py"
BANDS = ("B02", "B03", "B04", "B08")


@dataclass
class TableModel(CloudModel):
    """A fake masker: a fixed canonical class map (H, W), as one-hot-ish probabilities.

    ``certainty`` is the probability of the chosen class (the rest is shared by the others).
    Records the images it was given.
    """

    classes: np.ndarray
    name: str = "table"
    bands: tuple[str, ...] = ("B04", "B08")
    halo: int = 0
    certainty: float = 0.9
    seen: list[np.ndarray] = field(default_factory=list)

    def predict_proba(self, image: np.ndarray, context: dict[str, Any]) -> np.ndarray:
        self.seen.append(image)
        other = (1.0 - self.certainty) / (N_CLASSES - 1)
        probs = np.full((N_CLASSES, *self.classes.shape), other, dtype=np.float32)
        np.put_along_axis(probs, self.classes[None].astype(np.intp), self.certainty, axis=0)
        return probs


def image(shape: tuple[int, int] = (2, 4)) -> np.ndarray:
    return np.full((len(BANDS), *shape), 0.1, dtype=np.float32)


A = np.array([[0, 1, 2, 3], [0, 1, 3, 2]], dtype=np.uint8)
B = np.array([[0, 2, 2, 3], [1, 0, 0, 3]], dtype=np.uint8)


def test_fake_maskers_are_cloud_models() -> None:
    assert isinstance(TableModel(A), CloudModel)


def test_label_is_theirs_where_they_agree_else_ignored() -> None:
    mask = pseudo_label(
        image(), BANDS, ModelContext(resolution=10.0), [TableModel(A), TableModel(B)]
    )
    expected = np.array(
        [
            [CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW],  # thick+thin is cloud: thick
            [NODATA, NODATA, NODATA, NODATA],  # clear/cloud, cloud/clear, shadow/clear, thin/shadow
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8


def test_maskers_get_their_own_bands_in_their_order() -> None:
    first, second = TableModel(A, bands=("B08", "B02")), TableModel(A)
    stack = np.stack([np.full((2, 4), v, dtype=np.float32) for v in (0.1, 0.2, 0.3, 0.4)])
    pseudo_label(stack, BANDS, None, [first, second])
    assert first.seen[0][:, 0, 0].tolist() == pytest.approx([0.4, 0.1])
    assert second.seen[0][:, 0, 0].tolist() == pytest.approx([0.3, 0.4])


def test_no_data_and_low_confidence_become_ignore() -> None:
    data = image()
    data[0, 0, 0] = np.nan
    sure, unsure = TableModel(A), TableModel(A, certainty=0.5)
    mask = pseudo_label(data, BANDS, None, [sure, TableModel(A)])
    assert mask[0, 0] == NODATA and mask[0, 1] == THICK_CLOUD
    confident = pseudo_label(data, BANDS, None, [sure, unsure], min_confidence=0.6)
    assert np.all(confident == NODATA)
    assert np.array_equal(pseudo_label(data, BANDS, None, [sure, unsure], min_confidence=0.4), mask)


def test_majority_rule_with_three_maskers() -> None:
    c = np.array([[0, 1, 0, 0], [0, 0, 3, 3]], dtype=np.uint8)
    mask = combine_votes([A, B, c], rule="majority")
    expected = np.array(
        [
            [CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW],
            [CLEAR, CLEAR, CLOUD_SHADOW, CLOUD_SHADOW],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(DatasetError, match="unknown pseudo-label rule"):
        combine_votes([A, B], rule="vote")


def test_one_masker_or_unknown_names_are_refused() -> None:
    with pytest.raises(ModelError, match="at least two maskers"):
        pseudo_label(image(), BANDS, None, [TableModel(A)])
    with pytest.raises(UnknownNameError, match="unknown model"):
        pseudo_label(image(), BANDS, None, ["no-such-model", TableModel(A)])
    with pytest.raises(DatasetError, match="one plane per band"):
        pseudo_label(image()[:3], BANDS, None, [TableModel(A), TableModel(B)])


def test_registered_names_run_through_the_registry() -> None:
    """The physical model by name, twice: it always agrees with itself."""
    rng = np.random.default_rng(0)
    data = rng.uniform(0.02, 0.4, (4, 32, 32)).astype(np.float32)
    mask = pseudo_label(data, BANDS, ModelContext(resolution=10.0), ["physical", "physical"])
    assert mask.shape == (32, 32) and not np.any(mask == NODATA)


def test_reference_disagreement_on_cloud_only() -> None:
    pseudo = np.array([[0, 1, 3, 1, 255]], dtype=np.uint8)
    human = np.array([[0, 0, 0, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(
        agree_with_reference(pseudo, human), np.array([[0, 255, 3, 1, 255]], dtype=np.uint8)
    )


def test_human_cloud_with_pseudo_thin_and_shadow() -> None:
    pseudo = np.array([[0, 1, 3, 2, 255, 255, 3, 2]], dtype=np.uint8)
    human = np.array([[0, 0, 0, 1, 1, 0, 255, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(
        labels_from_reference(pseudo, human),
        np.array([[0, 0, 3, 2, 1, 0, 3, 2]], dtype=np.uint8),
    )
    with pytest.raises(DatasetError, match="differ in shape"):
        labels_from_reference(pseudo, human[:, :3])


# ------------------------------------------------------------------------------ the dataset
def test_dataset_follows_the_contract_and_caches(tmp_path: Path) -> None:
    images = [image(), image() * 2]
    maskers = [TableModel(A), TableModel(B)]
    ds = PseudoLabelled(images, bands=BANDS, maskers=maskers, cache=tmp_path / "cache")
    sample = ds[1]
    assert set(SAMPLE_KEYS) <= set(sample) and sample["mask"] is sample["mask_canonical"]
    assert sample["image"].shape == (4, 2, 4) and sample["bands"] == BANDS
    assert np.array_equal(sample["valid"], sample["mask"] != NODATA)
    assert sample["meta"]["maskers"] == ["table", "table"] and sample["meta"]["cached"] is False
    assert sample["meta"]["labelled"] == pytest.approx(0.5)
    calls = len(maskers[0].seen)
    again = ds[1]
    assert again["meta"]["cached"] is True and len(maskers[0].seen) == calls
    np.testing.assert_array_equal(again["mask"], sample["mask"])
    assert len(list((tmp_path / "cache").glob("pseudo_00001_*.npz"))) == 1
    other = PseudoLabelled(
        images, bands=BANDS, maskers=maskers, rule="majority", cache=tmp_path / "cache"
    )
    assert other[1]["meta"]["cached"] is False  # settings are part of the cache key


def test_dataset_refuses_arrays_without_bands_and_bad_rules() -> None:
    from s2clouds.errors import BandError

    with pytest.raises(BandError, match="band names"):
        PseudoLabelled([image()], maskers=[TableModel(A), TableModel(B)])
    with pytest.raises(DatasetError, match="unknown pseudo-label rule"):
        PseudoLabelled([image()], bands=BANDS, rule="any")
    with pytest.raises(DatasetError, match="at least one image"):
        PseudoLabelled([], bands=BANDS)


# ------------------------------------------------------------------------------ the script
@pytest.mark.peers
def test_build_training_set_on_real_data(real_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("ukis_csmask")
    build = runpy.run_path(str(SCRIPT), run_name="build_training_set")
    out = tmp_path / "set"
    argv = ["--out", str(out), "--real", str(real_data), "--synthetic", "5", "--size", "64"]
    argv += ["--exclude", "oncloudn_chip1,oncloudn_chip3,s2cloudless_l1c_scene"]
    argv += ["--human-labels", "--real-repeat", "2"]
    assert build["main"](argv) == 0
    chips = ChipFolders(out, scheme="canonical")
    kinds = [p.name.split("_")[0] for p in chips.chips]
    assert kinds.count("syn") == 5 and kinds.count("pl") >= 16
    copies = [p for p in chips.chips if p.name.endswith("_r1")]
    assert 2 * len(copies) == kinds.count("pl")  # every real tile is written twice
    original = out / copies[0].name.removesuffix("_r1") / "label.tif"
    assert (copies[0] / "label.tif").read_bytes() == original.read_bytes()
    sample = chips[0]
    assert sample["bands"] == BANDS and sample["image"].shape == (4, 64, 64)
    assert set(np.unique(sample["mask"])) <= {0, 1, 2, 3, 255}
    provenance = (out / "PROVENANCE.md").read_text()
    assert "oncloudn_chip2" in provenance and "CC BY 4.0" in provenance
    assert "Apache-2.0" in provenance
    used = provenance.split("## Real data used")[1].split("## Excluded")[0]
    licences = provenance.split("## Licences")[1].split("## How")[0]
    assert "oncloudn_chip3" not in used and "s2cloudless_l1c_scene" not in used
    assert "CC BY-SA" not in licences  # the s2cloudless scene was excluded
    manifest = (out / "manifest.csv").read_text()
    assert "oncloudn_chip3" not in manifest and "oncloudn_chip1" not in manifest
    with pytest.raises(SystemExit, match="match no real item"):
        build["main"](
            ["--out", str(tmp_path / "x"), "--real", str(real_data), "--exclude", "chip9"]
        )
