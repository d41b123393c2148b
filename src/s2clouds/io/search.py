"""Find Sentinel-2 acquisitions in a STAC API and write one item JSON per acquisition.

:func:`search_items` asks any STAC API (Earth Search, Planetary Computer, a local one) with
pystac-client (the ``search`` extra) for items of ``collections`` that meet ``bbox``
(longitude/latitude degrees, WGS 84), ``datetime`` (an RFC 3339 instant or interval) and at
most ``max_cloud`` percent ``eo:cloud_cover``. The cloud filter is sent with the API's query
extension, else its CQL2 filter extension, and is always checked again on the items (an API
without either only filters here). Items of one acquisition (platform, MGRS tile and time)
that the API lists twice (reprocessed products) are reduced to the newest.

:func:`write_items` writes each item to ``<folder>/<id>.json`` atomically (a temporary file
renamed into place); the hrefs stay as the API gave them (unsigned), so the items are read
remotely by :func:`~s2clouds.io.stac.read_stac_item` with a signing hook at read time.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from s2clouds._optional import require
from s2clouds.errors import SearchError
from s2clouds.io.stac import item_properties
from s2clouds.io.write import atomic_path

#: most items one search returns unless told otherwise
DEFAULT_MAX_ITEMS = 500
#: characters kept in item file names (others become ``_``)
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}){0,2}$")


@dataclass(frozen=True)
class SearchQuery:
    """One STAC search.

    ``url``: the API's landing page. ``collections``: collection ids (e.g.
    ``sentinel-2-l2a``). ``bbox``: (west, south, east, north) in degrees. ``datetime``: an
    instant or an interval ``A/B`` (``..`` for open ends). ``max_cloud``: the highest
    ``eo:cloud_cover`` in percent (items without it are dropped), None for no limit.
    ``max_items``: the most items fetched. ``timeout`` (seconds) and ``retries`` apply to
    each request to the API.
    """

    url: str
    collections: tuple[str, ...]
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    max_cloud: float | None = None
    max_items: int | None = DEFAULT_MAX_ITEMS
    timeout: float = 30.0
    retries: int = 3


@dataclass(frozen=True)
class SearchResult:
    """What a search found: ``items`` (item dicts, oldest first), how the cloud filter was
    sent (``"query"``, ``"filter"`` or ``"client"``), how many items the client-side check
    dropped (``dropped_cloud``) and how many repeated acquisitions were removed
    (``duplicates``), and whether ``max_items`` cut the results (``truncated``)."""

    items: list[dict[str, Any]]
    cloud_filter: str
    dropped_cloud: int = 0
    duplicates: int = 0
    truncated: bool = False


def parse_bbox(text: str | Sequence[float]) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` (degrees) -> four floats; :class:`SearchError` for anything that is not a
    box on the globe with west < east and south < north."""
    values: Sequence[Any] = text.replace(" ", "").split(",") if isinstance(text, str) else text
    try:
        west, south, east, north = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise SearchError(
            f"bbox {text!r} is not four numbers W,S,E,N in degrees (e.g. 11.0,46.0,11.5,46.5)"
        ) from exc
    box = (west, south, east, north)
    if not all(math.isfinite(v) for v in box):
        raise SearchError(f"bbox {text!r} holds a value that is not a number")
    if not (
        -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90
    ):
        raise SearchError(
            f"bbox {text!r} is off the globe: longitudes lie in -180..180 and latitudes in "
            "-90..90 (is it W,S,E,N in degrees, not metres or lat/lon swapped?)"
        )
    if south >= north or west >= east:
        raise SearchError(
            f"bbox {text!r} is empty or inverted: give W,S,E,N with west < east and south < "
            "north (a box across the antimeridian: search each side)"
        )
    return box


def _parse_instant(text: str, end: bool) -> datetime | None:
    if text in ("", ".."):
        return None
    if _PARTIAL_DATE.match(text):  # 2024, 2024-05, 2024-05-01: the start (or end) of it
        parts = [int(p) for p in text.split("-")]
        year, month, day = (parts + [1, 1])[:3]
        if end and len(parts) < 3:  # the last day of that year or month
            month = 12 if len(parts) == 1 else month
            day = calendar.monthrange(year, month)[1]
        return datetime(year, month, day)
    value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    return value.replace(tzinfo=None) if value.tzinfo is None else value


def check_datetime(text: str) -> str:
    """The ``datetime`` of a search, checked: an instant (``2024-05-01``,
    ``2024-05-01T10:00:00Z``) or an interval ``A/B`` with ``..`` for an open end, start
    before end; :class:`SearchError` otherwise."""
    parts = text.strip().split("/")
    if len(parts) > 2 or not text.strip() or all(p in ("", "..") for p in parts):
        raise SearchError(
            f"datetime {text!r} is not an instant or an interval A/B (e.g. "
            "2024-05-01/2024-06-30, 2024-05-01T00:00:00Z/.., 2024-06)"
        )
    try:
        start = _parse_instant(parts[0], end=False)
        stop = _parse_instant(parts[-1], end=True) if len(parts) == 2 else start
    except ValueError as exc:
        raise SearchError(
            f"datetime {text!r}: {exc}; use RFC 3339 dates or times, e.g. "
            "2024-05-01/2024-06-30 or 2024-05-01T00:00:00Z/2024-05-31T23:59:59Z"
        ) from exc
    if start is not None and stop is not None:
        try:
            inverted = start > stop
        except TypeError:  # one with a time zone, one without: compare the dates
            inverted = start.date() > stop.date()
        if inverted:
            raise SearchError(f"datetime {text!r} ends before it starts; give A/B with A <= B")
    return text.strip()


def cloud_cover(item: Mapping[str, Any]) -> float | None:
    """``eo:cloud_cover`` of an item in percent, None when it does not say."""
    value = item_properties(item).get("eo:cloud_cover")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def acquisition_key(item: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two items one acquisition: platform, MGRS tile and time (the item id when
    the item does not state them)."""
    props = item_properties(item)
    tile = props.get("s2:mgrs_tile") or props.get("grid:code") or props.get("mgrs:grid_square")
    platform = props.get("platform") or props.get("constellation")
    when = props.get("datetime")
    if not (tile and platform and when):
        return ("id", str(item.get("id")))
    tile = str(tile).upper().removeprefix("MGRS-")
    return (str(platform).lower(), tile, str(when))


def _freshness(item: Mapping[str, Any]) -> tuple[str, str]:
    props = item_properties(item)
    baseline = str(props.get("s2:processing_baseline") or "")
    stamp = str(
        props.get("updated") or props.get("created") or props.get("s2:generation_time") or ""
    )
    return baseline, stamp


def one_per_acquisition(items: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """``items`` with one item per :func:`acquisition_key` (the newest processing baseline,
    then the latest ``updated``/``created``), oldest acquisition first; and the number
    removed."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    count = 0
    for item in items:
        count += 1
        key = acquisition_key(item)
        if key not in best or _freshness(item) > _freshness(best[key]):
            best[key] = item
    kept = sorted(
        best.values(),
        key=lambda i: (str(item_properties(i).get("datetime") or ""), str(i.get("id"))),
    )
    return kept, count - len(kept)


def _client(query: SearchQuery) -> Any:
    require("pystac_client", "search", purpose="s2clouds search", error=SearchError)
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(
        total=query.retries,
        backoff_factor=0.5,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=None,  # POST searches are read-only: retry them too
        raise_on_status=False,
    )
    stac_io = StacApiIO(timeout=query.timeout, max_retries=retry)
    try:
        return Client.open(query.url, stac_io=stac_io)
    except Exception as exc:  # pystac-client raises APIError, pystac STACError, JSON errors
        raise SearchError(
            f"cannot open the STAC API at {query.url} ({type(exc).__name__}: "
            f"{str(exc)[:300]}); check the URL (the API's landing page, e.g. "
            "https://earth-search.aws.element84.com/v1) and the network"
        ) from exc


def search_items(query: SearchQuery) -> SearchResult:
    """Run ``query`` (see :class:`SearchQuery`); :class:`SearchError` when the API cannot be
    reached, is not a STAC API with item search, or refuses the query. An empty result is
    not an error: ``result.items`` is empty."""
    if query.bbox is not None:
        parse_bbox(query.bbox)
    if query.datetime is not None:
        check_datetime(query.datetime)
    if not query.collections:
        raise SearchError("give at least one collection, e.g. sentinel-2-l2a")
    client = _client(query)
    from pystac_client.conformance import ConformanceClasses

    if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
        raise SearchError(
            f"{query.url} is not a STAC API with item search (its landing page does not "
            "declare it); give the URL of a STAC API, e.g. https://earth-search.aws.element84.com/v1"
        )
    kwargs: dict[str, Any] = {
        "collections": list(query.collections),
        "bbox": list(query.bbox) if query.bbox else None,
        "datetime": query.datetime,
        "max_items": query.max_items + 1 if query.max_items is not None else None,
        "limit": min(100, query.max_items or 100),
    }
    how = "client"
    if query.max_cloud is not None:
        if client.conforms_to(ConformanceClasses.QUERY):
            kwargs["query"] = {"eo:cloud_cover": {"lte": query.max_cloud}}
            how = "query"
        elif client.conforms_to(ConformanceClasses.FILTER):
            kwargs["filter"] = {
                "op": "<=",
                "args": [{"property": "eo:cloud_cover"}, query.max_cloud],
            }
            kwargs["filter_lang"] = "cql2-json"
            how = "filter"
    try:
        found = list(client.search(**kwargs).items_as_dicts())
    except Exception as exc:  # APIError for HTTP errors and dropped connections
        raise SearchError(
            f"the STAC API at {query.url} refused or failed the search ({type(exc).__name__}: "
            f"{str(exc)[:300]}); check the collection ids, bbox and datetime, or retry later"
        ) from exc
    truncated = query.max_items is not None and len(found) > query.max_items
    found = found[: query.max_items] if query.max_items is not None else found
    kept = found
    if query.max_cloud is not None:
        limit = query.max_cloud
        kept = [i for i in found if (c := cloud_cover(i)) is not None and c <= limit]
    items, duplicates = one_per_acquisition(kept)
    return SearchResult(items, how, len(found) - len(kept), duplicates, truncated)


def item_filename(item_id: str) -> str:
    """``<id>.json`` with characters other than letters, digits, ``.``, ``_`` and ``-``
    replaced by ``_``."""
    stem = UNSAFE_NAME.sub("_", str(item_id)).strip(".") or "item"
    return f"{stem}.json"


def write_items(items: Iterable[Mapping[str, Any]], folder: Path) -> list[Path]:
    """Write each item to ``folder/<id>.json`` (UTF-8 JSON, indented) atomically; the folder
    is created. Returns the paths written, in ``items`` order; an existing file of the same
    item is replaced. :class:`SearchError` when two items would share one file name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for item in items:
        name = item_filename(str(item.get("id")))
        if name in written:
            raise SearchError(
                f"two items are written to {folder / name} (ids that differ only in characters "
                "not allowed in file names); write them to separate folders"
            )
        path = folder / name
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(item, indent=1) + "\n", encoding="utf-8")
        written[name] = path
    return list(written.values())
