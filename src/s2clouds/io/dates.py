"""The acquisition date of a scene: the one finder that composites and series use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from s2clouds.errors import S2CloudsError, SceneFormatError
from s2clouds.io.scene import Scene
from s2clouds.io.solar import parse_date
from s2clouds.io.stac import item_properties, load_item

#: raster tags that hold the acquisition time, in the order they are trusted
DATE_TAGS = ("ACQUISITION_DATE", "DATATAKE_SENSING_START", "SENSING_TIME", "TIFFTAG_DATETIME")


def acquisition_date(scene: Scene, path: str | None = None) -> dt.date | None:
    """The acquisition date of ``scene`` (opened from ``path``, default its ``meta["path"]``):
    from the STAC item (``properties.datetime``), the first band file's raster tags
    (:data:`DATE_TAGS`), the product id or the file name, in that order; None when none
    holds a date (``YYYY-MM-DD`` or ``YYYYMMDD``)."""
    path = path if path is not None else str(scene.meta.get("path", ""))
    if path.lower().endswith(".json"):
        try:
            props = item_properties(load_item(Path(path)))
        except S2CloudsError:
            props = {}
        stamp = props.get("datetime") or props.get("start_datetime")
        if stamp and (date := parse_date(str(stamp))):
            return date
    first = next((s for s in scene.sources if s.files()), None)
    if first is not None:
        try:
            tags = first.tags()
        except SceneFormatError:
            tags = {}
        for tag in DATE_TAGS:
            if tag in tags and (date := parse_date(tags[tag].replace(":", "-", 2))):
                return date
    return parse_date(scene.product_id) or parse_date(Path(path).name)
