"""Sentinel-2 Cloud Mask Catalogue reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.datasets.cmc import TAG_GROUPS, CloudMaskCatalogue
from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.errors import DatasetError


@pytest.fixture
def make(maker):
    return maker("cmc")


@pytest.fixture
def root(make, tmp_path: Path) -> Path:
    return make.write(tmp_path / "cmc")


def test_image_is_channels_first_reflectance(make, root: Path) -> None:
    ds = CloudMaskCatalogue(root)
    assert len(ds) == 4
    sample = ds[1]
    assert (
        sample["image"].shape == (13, make.SIZE, make.SIZE) and sample["image"].dtype == np.float32
    )
    np.testing.assert_array_equal(sample["image"], np.moveaxis(make.reflectance(1), -1, 0))
    assert sample["bands"][8] == "B8A" and len(sample["bands"]) == 13


def test_band_selection_picks_channels_by_name(make, root: Path) -> None:
    ds = CloudMaskCatalogue(root, bands=["B8A", "B2"])
    image = ds[0]["image"]
    stored = make.reflectance(0)
    np.testing.assert_array_equal(image[0], stored[:, :, 8])
    np.testing.assert_array_equal(image[1], stored[:, :, 1])
    single = CloudMaskCatalogue(root, bands="B04")  # one name, not the letters B, 0, 4
    assert single.bands == ("B04",)
    np.testing.assert_array_equal(single[0]["image"][0], stored[:, :, 3])


def test_one_hot_masks_decode_to_cmc_and_canonical(make, root: Path) -> None:
    sample = CloudMaskCatalogue(root)[2]
    classes = make.labels(2)
    expected = np.where(classes < 0, 255, classes).astype(np.uint8)
    np.testing.assert_array_equal(sample["mask"], expected)
    np.testing.assert_array_equal(sample["valid"], classes >= 0)
    canonical = sample["mask_canonical"]
    assert np.all(canonical[classes == 0] == 0)
    assert np.all(canonical[classes == 1] == 1)  # cloud -> thick cloud
    assert np.all(canonical[classes == 2] == 3)  # shadow -> cloud shadow
    assert np.all(canonical[classes < 0] == 255)


def test_meta_carries_tags_and_the_shadow_flag(make, root: Path) -> None:
    ds = CloudMaskCatalogue(root)
    meta = ds[2]["meta"]
    assert meta["scene"] == make.SCENES[2][0]
    assert meta["shadows_marked"] is False and ds[0]["meta"]["shadows_marked"] is True
    assert (
        meta["tags"]["forest/jungle"]
        and meta["tags"]["hills/mountains"]
        and not meta["tags"]["thin"]
    )
    assert meta["dataset"] == "VALIDATION"
    assert set(meta["tags"]) == {t for group in TAG_GROUPS.values() for t in group}


def test_tag_filters(make, root: Path) -> None:
    assert len(CloudMaskCatalogue(root, tags={"forest": True})) == 2
    both = CloudMaskCatalogue(root, tags={"forest/jungle": True, "thick": True})
    assert [s["meta"]["scene"] for s in both] == [make.SCENES[2][0]]
    assert len(CloudMaskCatalogue(root, tags={"shadows_marked": False})) == 1
    assert len(CloudMaskCatalogue(root, tags={"forest": False, "snow": False})) == 1
    with pytest.raises(DatasetError, match="is not a tag"):
        CloudMaskCatalogue(root, tags={"volcano": True})


def test_summary_counts_tags_and_shadow_annotation(root: Path) -> None:
    summary = CloudMaskCatalogue(root).summary()
    assert summary["samples"] == 4
    assert summary["shadows marked"] == "3 of 4 scenes"
    assert summary["scenes per tag"]["forest/jungle"] == 2


def test_row_without_subscene_names_the_file(make, root: Path) -> None:
    missing = root / "subscenes" / f"{make.SCENES[1][0]}.npy"
    missing.unlink()
    with pytest.raises(DatasetError, match=missing.name):
        CloudMaskCatalogue(root)
    with pytest.warns(UserWarning, match=missing.name):
        ds = CloudMaskCatalogue(root, strict=False)
    assert len(ds) == 3 and make.SCENES[1][0] not in {s["meta"]["scene"] for s in ds}


def test_subscene_without_mask_names_the_file(make, root: Path) -> None:
    missing = root / "masks" / f"{make.SCENES[3][0]}.npy"
    missing.unlink()
    with pytest.raises(DatasetError, match=r"masks[/\\]" + missing.name):
        CloudMaskCatalogue(root)


def test_missing_csv_and_damaged_arrays(make, root: Path) -> None:
    scene = make.SCENES[0][0]
    np.save(root / "subscenes" / f"{scene}.npy", np.zeros((8, 8, 4), np.float32))
    with pytest.raises(DatasetError, match=r"\(8, 8, 4\); expected \(H, W, 13\)"):
        CloudMaskCatalogue(root)[0]
    (root / "subscenes" / f"{scene}.npy").write_bytes(b"not an npy file")
    with pytest.raises(DatasetError, match="cannot read"):
        CloudMaskCatalogue(root)[0]
    (root / "classification_tags.csv").unlink()
    with pytest.raises(DatasetError, match=r"classification_tags\.csv not found"):
        CloudMaskCatalogue(root)


def test_csv_without_scene_column(root: Path) -> None:
    (root / "classification_tags.csv").write_text("name,thin\nx,1\n")
    with pytest.raises(DatasetError, match="no 'scene' column"):
        CloudMaskCatalogue(root)


def test_registry_detects_the_catalogue(root: Path) -> None:
    assert detect_dataset(root) == "cmc"
    ds = open_dataset(root, tags={"open_water": True})
    assert isinstance(ds, CloudMaskCatalogue) and len(ds) == 1


def test_meta_records_the_20_m_grid(root: Path) -> None:
    assert CloudMaskCatalogue(root)[0]["meta"]["resolution"] == 20.0


def test_other_spellings_and_unknown_columns(make, root: Path) -> None:
    from s2clouds.datasets.cmc import published_column, tag_group

    assert published_column("Forest / Jungle") == "forest/jungle"
    assert published_column("Open-Water") == "open_water"
    assert published_column("low cloud") == "low" and published_column("Ice Clouds") == "ice_clouds"
    assert published_column("Shadows Marked") == "shadows_marked"
    assert published_column("sun_glint") == "sun_glint"
    assert tag_group("Thin") == "cloud thickness" and tag_group("sun_glint") == "other"
    tags = root / "classification_tags.csv"
    lines = tags.read_text().splitlines()
    header = lines[0].replace("snow/ice", "Snow / Ice")
    tags.write_text(
        "\n".join([f"{header},sun_glint,note", *(f"{x},0,ok" for x in lines[1:])]) + "\n"
    )
    with pytest.warns(UserWarning, match="sun_glint, note"):
        ds = CloudMaskCatalogue(root, tags="snow,!thin")
    assert ds.unknown_columns == ["sun_glint", "note"] and len(ds) == 1
    assert ds[0]["meta"]["tags"]["snow/ice"] is True and "sun_glint" in ds[0]["meta"]["tags"]
    assert ds.summary()["unknown columns"] == ["sun_glint", "note"]


def test_a_column_named_twice_is_refused(root: Path) -> None:
    tags = root / "classification_tags.csv"
    lines = tags.read_text().splitlines()
    tags.write_text("\n".join([f"{lines[0]},Forest / Jungle", *(f"{x},0" for x in lines[1:])]))
    with pytest.raises(DatasetError, match="names the columns forest/jungle twice"):
        CloudMaskCatalogue(root)
