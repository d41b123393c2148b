"""SEN12MS-CR pairs and time series read from their real layout and labelled by change."""

from __future__ import annotations

import numpy as np
import pytest

from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.datasets.sen12mscr import SEN12MSCRPairs, SEN12MSCRSeries
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA
from s2clouds.labels.change import SHADOW, THICK, THIN


def test_pairs_are_read_labelled_and_unusable_ones_skipped(tmp_path, maker) -> None:
    written = maker("sen12mscr").write(tmp_path)
    assert detect_dataset(tmp_path) == "sen12mscr"
    pairs = open_dataset(tmp_path)
    assert len(pairs) == 2  # the snowy pair is skipped
    sample = pairs[0]
    first = written[sample["meta"]["id"]]
    assert np.allclose(sample["image"], first["cloudy"] / 10000.0)
    assert np.allclose(sample["reference"], first["clear"] / 10000.0)
    assert sample["bands"][10] == "B10" and sample["meta"]["level"] == "L1C"
    mask = sample["mask"]
    assert {THICK, THIN, SHADOW} <= set(np.unique(mask).tolist())
    labelled = mask != NODATA
    assert np.mean(mask[labelled] == first["truth"][labelled]) > 0.99
    assert len(SEN12MSCRPairs(tmp_path, keep_unusable=True)) == 3


def test_pairs_exclude_and_only(tmp_path, maker) -> None:
    pairs = maker("sen12mscr")
    pairs.write(tmp_path)
    assert len(SEN12MSCRPairs(tmp_path, exclude=pairs.PAIRS[0])) == 1
    assert SEN12MSCRPairs(tmp_path, only=[pairs.PAIRS[1]])[0]["meta"]["id"] == pairs.PAIRS[1]
    with pytest.raises(DatasetError, match="no pair folder"):
        SEN12MSCRPairs(tmp_path, only=["nope"])


def test_series_dates_are_labelled_against_the_others(tmp_path, maker) -> None:
    made = maker("sen12mscr-ts").write(tmp_path)
    assert detect_dataset(tmp_path) == "sen12mscr-ts"
    series = SEN12MSCRSeries(tmp_path)
    assert len(series) == len(made["dates"])
    cloudy = series[made["cloudy"]]
    assert cloudy["meta"]["date"] == made["dates"][made["cloudy"]]
    assert {THICK, THIN} <= set(np.unique(cloudy["mask"]).tolist())
    clear = series[0]["mask"]
    assert np.mean(clear[clear != NODATA] == 0) > 0.99
