"""TemporalCloudDataset on tiny files in the real TFRecord format of the dataset."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.datasets.temporal import CENTRE, TemporalCloudDataset, iso_date
from s2clouds.datasets.tfrecord import encode_example, write_records
from s2clouds.errors import DatasetError
from s2clouds.labels import to_canonical
from s2clouds.viz import rgb_quicklook


@pytest.fixture
def written(maker, tmp_path) -> dict[str, list[dict[str, Any]]]:
    return maker("temporal").write(tmp_path / "ds")


def _flat(written: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Records in reader order (files sorted by path)."""
    return [r for name in sorted(written) for r in written[name]]


def _check_sample(sample: dict[str, Any], record: dict[str, Any]) -> None:
    dn = record["image"]
    t = dn.shape[0]
    expected = np.where(dn == 0, np.nan, dn / 10000.0).astype(np.float32)
    assert sample["image"].shape == (t, 4, 42, 42) and sample["image"].dtype == np.float32
    np.testing.assert_allclose(sample["image"], expected, rtol=1e-6)
    np.testing.assert_array_equal(sample["labels"], record["labels"])
    assert sample["mask"].shape == (t, 42, 42) and sample["mask"].dtype == np.uint8
    np.testing.assert_array_equal(
        sample["mask"][:, CENTRE, CENTRE],
        np.broadcast_to(record["labels"][:, None, None], (t, 6, 6)),
    )
    assert (sample["mask"] != 255).sum() == 36 * t  # label only on the centre 6 x 6
    assert sample["valid"].sum() == 36 * t and not sample["valid"][:, 0, 0].any()
    canonical = to_canonical(record["labels"].astype(np.uint8), "spatiotemporal")
    np.testing.assert_array_equal(sample["mask_canonical"][:, 20, 21], canonical)
    assert (sample["mask_canonical"][:, :18] == 255).all()
    meta = sample["meta"]
    assert meta["localid"] == record["localid"]
    np.testing.assert_array_equal(meta["dates_raw"], record["dates"])
    assert meta["dates"][0] == dt.date.fromordinal(int(record["dates"][0])).isoformat()
    np.testing.assert_array_equal(meta["weights"], record["weights"])
    assert sample["bands"] == ("B02", "B03", "B04", "B08")
    assert sample["crs"] is None and sample["transform"] is None


def test_reads_every_record_with_its_values(written, tmp_path) -> None:
    ds = TemporalCloudDataset(tmp_path / "ds")
    records = _flat(written)
    assert len(ds) == len(records) == 5
    for i, record in enumerate(records):
        _check_sample(ds[i], record)
    assert ds[-1]["meta"]["localid"] == records[-1]["localid"]
    first = ds[0]["meta"]
    assert (first["split"], first["tile"], first["record"]) == ("train", "T50RKR", 0)
    assert first["file"].endswith("train_T50RKR_3")
    with pytest.raises(IndexError):
        ds[5]


def test_iteration_streams_the_same_samples(written, tmp_path) -> None:
    ds = TemporalCloudDataset(tmp_path / "ds")
    for sample, record in zip(ds, _flat(written), strict=True):
        _check_sample(sample, record)


def test_split_filter_and_summary(written, tmp_path) -> None:
    val = TemporalCloudDataset(tmp_path / "ds", split="val")
    assert len(val) == 2
    assert {val[i]["meta"]["split"] for i in range(2)} == {"val"}
    summary = TemporalCloudDataset(tmp_path / "ds").summary()
    assert summary["samples_per_split"] == {"train": 3, "val": 2}
    assert summary["tiles"] == ["T49QGF", "T50RKR"]
    with pytest.raises(DatasetError, match="unknown split"):
        TemporalCloudDataset(tmp_path / "ds", split="test")


def test_detect_uses_names(written, tmp_path) -> None:
    assert TemporalCloudDataset.detect(tmp_path / "ds")
    assert TemporalCloudDataset.detect(tmp_path / "ds" / "val_T49QGF_2")
    assert TemporalCloudDataset.detect(tmp_path)  # dataset one level down
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.csv").write_text("x")
    assert not TemporalCloudDataset.detect(other)
    with pytest.raises(DatasetError, match="no spatio-temporal dataset files"):
        TemporalCloudDataset(other)


def test_reads_7z_archives_streaming_and_random_access(maker, tmp_path) -> None:
    pytest.importorskip("py7zr")
    written = maker("temporal").write(tmp_path / "ds", archive=True)
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [
        "train_T50RKR_3.7z",
        "val_T49QGF_2.7z",
    ]
    ds = TemporalCloudDataset(tmp_path / "ds", extract_dir=tmp_path / "cache")
    assert len(ds) == 5
    for sample, record in zip(ds, _flat(written), strict=True):  # streamed, nothing extracted
        _check_sample(sample, record)
    assert not (tmp_path / "cache").exists()
    _check_sample(ds[4], _flat(written)[4])
    assert (tmp_path / "cache" / "val_T49QGF_2").is_file()
    assert ds.summary()["archives"] == 2


def test_extracted_file_hides_its_archive(maker, tmp_path) -> None:
    pytest.importorskip("py7zr")
    maker("temporal").write(tmp_path / "ds", archive=True)
    maker("temporal").write(tmp_path / "ds")
    ds = TemporalCloudDataset(tmp_path / "ds")
    assert len(ds) == 5 and ds.summary()["archives"] == 0


def test_record_count_must_match_the_file_name(written, tmp_path) -> None:
    root = tmp_path / "ds"
    shutil.move(root / "val_T49QGF_2", root / "val_T49QGF_3")
    ds = TemporalCloudDataset(root, split="val")
    assert len(ds) == 3  # from the name
    with pytest.raises(DatasetError, match="holds 2 records but its name says 3"):
        ds[0]


def test_damaged_file_names_the_file(written, tmp_path) -> None:
    path = tmp_path / "ds" / "val_T49QGF_2"
    data = bytearray(path.read_bytes())
    data[500] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=r"val_T49QGF_2: CRC mismatch in the data of the record at byte 0"
    ):
        TemporalCloudDataset(path)[0]


def test_explicit_files_with_other_names_are_counted(maker, tmp_path) -> None:
    make = maker("temporal")
    record = make.make_record(7, 3, np.random.default_rng(1))
    path = tmp_path / "series.tfrecord"
    write_records(path, [make.serialise(record)] * 2)
    ds = TemporalCloudDataset([path])
    assert len(ds) == 2
    _check_sample(ds[1], record)


def test_missing_or_inconsistent_features_are_reported(maker, tmp_path) -> None:
    image = np.ones((2, 4, 42, 42), "<u2").tobytes()
    no_labels = encode_example({"localid": np.array([1]), "image_raw_ldseries": image})
    short_labels = encode_example(
        {
            "localid": np.array([1]),
            "image_raw_ldseries": image,
            "labels": np.array([0], "i1").tobytes(),
            "dates": np.array([1, 2], "<i8").tobytes(),
            "weights": b"",
        }
    )
    write_records(tmp_path / "train_X_2", [no_labels, short_labels])
    ds = TemporalCloudDataset(tmp_path / "train_X_2")
    with pytest.raises(DatasetError, match=r"train_X_2 record 0: record has no feature 'labels'"):
        ds[0]
    with pytest.raises(DatasetError, match=r"record 1: 1 labels for 2 timestamps"):
        ds[1]


def test_number_lists_are_accepted_and_unknown_labels_are_no_data(tmp_path) -> None:
    example = encode_example(
        {
            "localid": np.array([3]),
            "image_raw_ldseries": np.full((2, 4, 42, 42), 1000, "<u2").tobytes(),
            "labels": np.array([4, -1]),  # int64 list instead of bytes; -1 is not a class
            "dates": np.array([20200105, 5]),
            "weights": np.array([1.0, 0.5]),
        }
    )
    write_records(tmp_path / "val_Y_1", [example])
    sample = TemporalCloudDataset(tmp_path / "val_Y_1")[0]
    assert sample["labels"].tolist() == [4, -1]
    assert sample["mask"][:, 20, 20].tolist() == [4, 255]
    assert sample["mask_canonical"][:, 20, 20].tolist() == [3, 255]
    assert sample["valid"][0].sum() == 36 and not sample["valid"][1].any()
    assert sample["meta"]["dates"] == ["2020-01-05", None]
    np.testing.assert_allclose(sample["image"], 0.1)


def test_iso_date_readings() -> None:
    assert iso_date(dt.date(2021, 7, 4).toordinal()) == "2021-07-04"
    assert iso_date(20190312) == "2019-03-12"
    assert iso_date(3) is None and iso_date(20191399) is None


def test_plot_shows_a_strip_of_timestamps(written, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    ds = TemporalCloudDataset(tmp_path / "ds")
    record = _flat(written)[2]  # 7 timestamps
    fig = ds.plot(2, max_timestamps=4)
    assert len(fig.axes) == min(7, 4)
    first = fig.axes[0]
    assert first.get_title().startswith(dt.date.fromordinal(int(record["dates"][0])).isoformat())
    (outline,) = first.patches
    assert outline.get_xy() == (CENTRE.start - 0.5, CENTRE.start - 0.5)
    assert outline.get_width() == outline.get_height() == CENTRE.stop - CENTRE.start
    assert plt.get_fignums() == []  # built without pyplot: nothing to close

    sample = ds[1]  # 3 timestamps, fewer than max_timestamps
    fig = ds.plot(1, layers=["valid", "mask_canonical"], stretch="fixed")
    assert len(fig.axes) == 3 * 3  # a row of quicklooks, then one row per layer
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(
        shown, rgb_quicklook(sample["image"][0], sample["bands"], stretch="fixed")
    )
    assert [ax.get_title() for ax in fig.axes[3:]] == ["valid"] * 3 + ["mask_canonical"] * 3
    np.testing.assert_array_equal(np.asarray(fig.axes[5].images[0].get_array()), sample["valid"][2])
    with pytest.raises(DatasetError, match=r"'labels' is not a \(T, 42, 42\) layer"):
        ds.plot(0, layers=["labels"])


def test_extraction_leaves_no_partial_file(maker, tmp_path, monkeypatch) -> None:
    pytest.importorskip("py7zr")
    from s2clouds.datasets import temporal

    written = maker("temporal").write(tmp_path / "ds", archive=True)
    cache = tmp_path / "cache"
    ds = TemporalCloudDataset(tmp_path / "ds", extract_dir=cache)
    real_chunks = temporal._archive_chunks

    def interrupted(archive: Path, member: str):
        chunks = real_chunks(archive, member)
        try:
            yield next(chunks)
            raise DatasetError("extraction interrupted")
        finally:
            chunks.close()

    monkeypatch.setattr(temporal, "_archive_chunks", interrupted)
    with pytest.raises(DatasetError, match="extraction interrupted"):
        ds[0]
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    _check_sample(ds[0], _flat(written)[0])
    assert [p.name for p in cache.iterdir()] == ["train_T50RKR_3"]


def test_records_without_weights_or_localid_read_as_the_card_parser_reads_them(tmp_path) -> None:
    """The card's parser declares ``localid`` with default -1 and ``weights`` default ''."""
    example = encode_example(
        {
            "image_raw_ldseries": np.full((2, 4, 42, 42), 800, "<u2").tobytes(),
            "labels": np.array([0, 1], "i1").tobytes(),
            "dates": np.array([737791, 737801], "<i8").tobytes(),
        }
    )
    write_records(tmp_path / "train_Z_1", [example])
    sample = TemporalCloudDataset(tmp_path / "train_Z_1")[0]
    assert sample["meta"]["localid"] == -1
    assert sample["meta"]["weights"].dtype == np.float32 and sample["meta"]["weights"].size == 0
    assert sample["mask"][:, 20, 20].tolist() == [0, 1]
