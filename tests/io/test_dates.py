"""One acquisition-date finder for composites and series (s2clouds.io.dates)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from s2clouds.inference.series import date_days
from s2clouds.io.dates import acquisition_date
from s2clouds.io.scenes import read_scene


def _tif(path: Path, **tags: str) -> Path:
    profile = {
        "driver": "GTiff",
        "width": 8,
        "height": 8,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(500_000, 5_000_000, 10, 10),
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((4, 8, 8), 1200, np.uint16))
        ds.descriptions = ("B02", "B03", "B04", "B08")
        ds.update_tags(**tags)
    return path


def test_tags_come_before_the_name_and_the_name_before_nothing(tmp_path: Path) -> None:
    tagged = read_scene(_tif(tmp_path / "2020-05-01.tif", ACQUISITION_DATE="2020-06-02"))
    assert acquisition_date(tagged) == dt.date(2020, 6, 2)
    named = read_scene(_tif(tmp_path / "S2A_20200701_x.tif"))
    assert acquisition_date(named) == dt.date(2020, 7, 1)
    stamped = read_scene(_tif(tmp_path / "x.tif", TIFFTAG_DATETIME="2020:08:03 10:00:00"))
    assert acquisition_date(stamped) == dt.date(2020, 8, 3)
    bare = read_scene(_tif(tmp_path / "y.tif"))
    assert acquisition_date(replace(bare, product_id="y")) is None


def test_series_and_composite_date_alike(tmp_path: Path) -> None:
    """The series' day numbers come from the same finder: a date in the tags counts."""
    first = read_scene(_tif(tmp_path / "a.tif", ACQUISITION_DATE="2020-01-01"))
    second = read_scene(_tif(tmp_path / "b.tif", ACQUISITION_DATE="2020-01-11"))
    assert date_days([first, second]) == [0.0, 10.0]
