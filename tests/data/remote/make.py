"""Loopback servers and items for the remote-reading and search tests (nothing leaves 127.0.0.1).

* :class:`RangeFileServer`: serves a folder over HTTP with ``Range: bytes=a-b`` (206 and
  ``Content-Range``) and ``HEAD``, as object stores do; it can demand a signature
  (``?sig=<current>``, 403 otherwise), answer 503 for chosen paths, serve a Planetary
  Computer style SAS token endpoint, and logs every request.
* :class:`StacApiServer`: a minimal STAC API (landing page, ``GET``/``POST /search`` with
  collections, bbox, datetime, limit, ``query`` on ``eo:cloud_cover`` when it declares the
  query extension, and pagination by ``next`` links).
* :func:`write_cogs` crops a real On Cloud N chip into small COGs; :func:`earth_search_item`
  and :func:`planetary_computer_item` describe them the way those catalogues do.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

BANDS = ("B02", "B03", "B04", "B08")
#: Earth Search v1 asset keys and centre wavelengths (micrometres) of the four bands
EARTH_SEARCH = {
    "B02": ("blue", 0.49),
    "B03": ("green", 0.56),
    "B04": ("red", 0.665),
    "B08": ("nir", 0.842),
}
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
]
QUERY_CONFORMANCE = "https://api.stacspec.org/v1.0.0/item-search#query"
FILTER_CONFORMANCE = "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter"


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")


class _FileHandler(_QuietHandler):
    server: RangeFileServer

    def do_HEAD(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlparse(self.path)
        params = parse_qs(url.query)
        srv = self.server
        with srv.lock:
            srv.log.append((self.command, url.path, url.query, self.headers.get("Range")))
        if url.path.startswith("/token/"):
            _, _, account, container = url.path.split("/", 3)
            with srv.lock:
                srv.token_requests += 1
            expiry = datetime.now(UTC) + timedelta(hours=1)
            self._json(
                200,
                {
                    "token": f"st=x&se=y&sig={account}-{container}",
                    "msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
            return
        if url.path in srv.fail_paths:
            self._send(503, b"busy", "text/plain")
            return
        if srv.signature is not None and params.get("sig", [None])[0] != srv.signature:
            self._send(403, b"signature missing or expired", "text/plain")
            return
        file = (srv.root / url.path.lstrip("/")).resolve()
        if srv.root not in file.parents or not file.is_file():
            self._send(404, b"not found", "text/plain")
            return
        data = file.read_bytes()
        ctype = "image/tiff"
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if ranged is None:
            self._send(200, data, ctype, {"Accept-Ranges": "bytes"})
            return
        start = int(ranged[1])
        end = min(int(ranged[2]) if ranged[2] else len(data) - 1, len(data) - 1)
        if start >= len(data):
            self._send(416, b"", ctype, {"Content-Range": f"bytes */{len(data)}"})
            return
        extra = {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        self._send(206, data[start : end + 1], ctype, extra)


class RangeFileServer(ThreadingHTTPServer):
    """Files of ``root`` over HTTP with range requests; see the module docstring."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _FileHandler)
        self.root = Path(root).resolve()
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, str, str | None]] = []
        self.fail_paths: set[str] = set()
        self.signature: str | None = None
        self.token_requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for _, p, _, _ in self.log if p == path)


def _intersects(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _in_interval(when: str, interval: str) -> bool:
    parts = interval.split("/")
    start, end = parts[0], parts[-1]
    moment = _instant(when)
    if start not in ("", ".."):
        if len(start) == 10:
            start += "T00:00:00Z"
        if moment < _instant(start):
            return False
    if end not in ("", ".."):
        if len(end) == 10:
            end += "T23:59:59Z"
        if moment > _instant(end):
            return False
    return True


class _StacHandler(_QuietHandler):
    server: StacApiServer

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path in ("", "/"):
            self._json(200, self.server.landing())
            return
        if url.path == "/search":
            raw = {k: v[0] for k, v in parse_qs(url.query).items()}
            params: dict[str, Any] = dict(raw)
            for key in ("collections", "bbox"):
                if key in raw:
                    params[key] = raw[key].split(",")
            if "query" in raw:
                params["query"] = json.loads(raw["query"])
            self._search(params, "GET")
            return
        self._json(404, {"code": "NotFound"})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if url.path == "/search":
            self._search(body, "POST")
            return
        self._json(404, {"code": "NotFound"})

    def _search(self, params: dict[str, Any], method: str) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append((method, params))
        found = list(srv.items)
        if params.get("collections"):
            found = [i for i in found if i["collection"] in params["collections"]]
        if params.get("bbox"):
            box = [float(v) for v in params["bbox"]]
            found = [i for i in found if _intersects(i["bbox"], box)]
        if params.get("datetime"):
            found = [
                i for i in found if _in_interval(i["properties"]["datetime"], params["datetime"])
            ]
        query = params.get("query")
        if query and srv.query_extension:
            for prop, ops in query.items():
                for op, value in ops.items():
                    test = {
                        "lt": np.less,
                        "lte": np.less_equal,
                        "gt": np.greater,
                        "gte": np.greater_equal,
                    }[op]
                    found = [
                        i
                        for i in found
                        if prop in i["properties"] and test(i["properties"][prop], value)
                    ]
        cql = params.get("filter")
        if cql and srv.filter_extension:  # only {"op": "<=", "args": [{"property": p}, v]}
            assert cql["op"] == "<=", cql
            prop, value = cql["args"][0]["property"], cql["args"][1]
            found = [i for i in found if i["properties"].get(prop, np.inf) <= value]
        limit = min(int(params.get("limit") or 10), srv.page_size)
        start = int(params.get("token") or 0)
        page = found[start : start + limit]
        links = []
        if start + limit < len(found):
            nxt = start + limit
            if method == "POST":
                links.append(
                    {
                        "rel": "next",
                        "href": f"{srv.url}/search",
                        "method": "POST",
                        "body": {**params, "token": str(nxt)},
                    }
                )
            else:
                query_text = "&".join(
                    f"{k}={json.dumps(v) if isinstance(v, dict) else ','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in {**params, "token": nxt}.items()
                )
                links.append(
                    {"rel": "next", "href": f"{srv.url}/search?{query_text}", "method": "GET"}
                )
        self._json(
            200,
            {
                "type": "FeatureCollection",
                "features": page,
                "links": links,
                "numberMatched": len(found),
            },
        )


class StacApiServer(ThreadingHTTPServer):
    """A minimal STAC API over ``items`` (dicts); ``query_extension`` and
    ``filter_extension`` declare (and apply) the query and CQL2 filter extensions. ``requests`` logs (method, parameters) of each search."""

    daemon_threads = True

    def __init__(
        self,
        items: Sequence[dict[str, Any]],
        *,
        query_extension: bool = True,
        filter_extension: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _StacHandler)
        self.items = list(items)
        self.query_extension = query_extension
        self.filter_extension = filter_extension
        self.page_size = 2  # small pages, as a server may cap ``limit``: pagination is used
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def landing(self) -> dict[str, Any]:
        conforms = CONFORMANCE + ([QUERY_CONFORMANCE] if self.query_extension else [])
        conforms += [FILTER_CONFORMANCE] if self.filter_extension else []
        return {
            "type": "Catalog",
            "id": "loopback",
            "stac_version": "1.0.0",
            "description": "test STAC API",
            "conformsTo": conforms,
            "links": [
                {"rel": "self", "href": f"{self.url}/", "type": "application/json"},
                {"rel": "root", "href": f"{self.url}/", "type": "application/json"},
                {
                    "rel": "search",
                    "href": f"{self.url}/search",
                    "type": "application/geo+json",
                    "method": "GET",
                },
                {
                    "rel": "search",
                    "href": f"{self.url}/search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
            ],
        }


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """Run ``server`` in a daemon thread for the ``with`` block, then shut it down."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def crop_chip(
    chip: Path, size: int = 256, row: int = 128, col: int = 128
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A ``size`` x ``size`` window of the chip's four bands (uint16 DN) and its profile."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    arrays = {}
    window = Window(col, row, size, size)
    for band in BANDS:
        with rasterio.open(chip / f"{band}.tif") as ds:
            arrays[band] = ds.read(1, window=window)
            transform = ds.transform @ Affine.translation(col, row)
            profile = {"crs": ds.crs, "transform": transform, "nodata": ds.nodata}
    return arrays, profile


def write_cogs(
    folder: Path, arrays: Mapping[str, np.ndarray], profile: Mapping[str, Any], *, add: int = 0
) -> dict[str, Path]:
    """One COG per band in ``folder`` (128 px tiles, so a 256 px crop is read in several ranges); ``add`` is
    added to every valid DN (1000: the raw values of a baseline 04.00 product)."""
    import rasterio

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for band, data in arrays.items():
        values = np.where(data == 0, 0, data.astype(np.int32) + add).astype(np.uint16)
        path = folder / f"{band}.tif"
        with rasterio.open(
            path,
            "w",
            driver="COG",
            width=values.shape[1],
            height=values.shape[0],
            count=1,
            dtype="uint16",
            crs=profile["crs"],
            transform=profile["transform"],
            nodata=0,
            blocksize=128,
            overviews="NONE",
        ) as ds:
            ds.write(values, 1)
        paths[band] = path
    return paths


def _base_item(item_id: str, when: str, cloud: float, props: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "bbox": [11.0, 46.0, 11.2, 46.2],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[11.0, 46.0], [11.2, 46.0], [11.2, 46.2], [11.0, 46.2], [11.0, 46.0]]],
        },
        "properties": {
            "datetime": when,
            "eo:cloud_cover": cloud,
            "platform": "sentinel-2b",
            **props,
        },
        "links": [],
    }


def earth_search_item(
    base_href: str,
    *,
    offset_applied: bool,
    baseline: str = "05.09",
    item_id: str = "S2B_32TPS_20240601_0_L2A",
) -> dict[str, Any]:
    """An Earth Search v1 style item: common-name keys, ``raster:bands`` scale 1e-4 and offset
    -0.1 (as Earth Search writes them either way), ``earthsearch:boa_offset_applied``, plus a
    JPEG 2000 copy, SCL, a thumbnail and metadata that are not bands."""
    props = {
        "s2:processing_baseline": baseline,
        "s2:product_type": "S2MSI2A",
        "earthsearch:boa_offset_applied": offset_applied,
        "grid:code": "MGRS-32TPS",
        "view:sun_elevation": 60.0,
        "view:sun_azimuth": 150.0,
    }
    item = _base_item(item_id, "2024-06-01T10:20:00Z", 12.5, props)
    assets: dict[str, Any] = {}
    for band, (key, wavelength) in EARTH_SEARCH.items():
        assets[key] = {
            "href": f"{base_href}/{band}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data", "reflectance"],
            "eo:bands": [{"name": key, "common_name": key, "center_wavelength": wavelength}],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}],
        }
        assets[f"{key}-jp2"] = {
            "href": f"{base_href}/missing/{band}.jp2",  # never read: the COG wins
            "type": "image/jp2",
            "roles": ["data", "reflectance"],
            "eo:bands": [{"name": key, "common_name": key, "center_wavelength": wavelength}],
        }
    assets["scl"] = {
        "href": f"{base_href}/missing/SCL.tif",
        "type": "image/tiff; application=geotiff",
        "roles": ["data"],
    }
    assets["thumbnail"] = {
        "href": f"{base_href}/missing/thumb.jpg",
        "type": "image/jpeg",
        "roles": ["thumbnail"],
    }
    assets["granule_metadata"] = {
        "href": f"{base_href}/missing/metadata.xml",
        "type": "application/xml",
        "roles": ["metadata"],
    }
    item["assets"] = assets
    return item


def planetary_computer_item(
    base_href: str,
    *,
    baseline: str = "05.09",
    item_id: str = "S2B_MSIL2A_20240601T102559_R108_T32TPS_20240601T150000",
) -> dict[str, Any]:
    """A Planetary Computer style item: ``B02``.. keys, ``eo:bands`` names and wavelengths,
    no ``raster:bands`` scale (the baseline decides the offset), an SCL and a visual asset."""
    props = {
        "s2:processing_baseline": baseline,
        "s2:product_type": "S2MSI2A",
        "s2:mgrs_tile": "32TPS",
        "s2:mean_solar_zenith": 30.0,
        "s2:mean_solar_azimuth": 150.0,
    }
    item = _base_item(item_id, "2024-06-01T10:20:00Z", 12.5, props)
    assets: dict[str, Any] = {}
    for band, (key, wavelength) in EARTH_SEARCH.items():
        assets[band] = {
            "href": f"{base_href}/{band}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "gsd": 10.0,
            "eo:bands": [
                {
                    "name": band,
                    "common_name": key,
                    "description": key,
                    "center_wavelength": wavelength,
                }
            ],
        }
    assets["SCL"] = {
        "href": f"{base_href}/missing/SCL.tif",
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
    }
    assets["visual"] = {
        "href": f"{base_href}/missing/TCI.tif",
        "type": "image/tiff",
        "roles": ["data"],
    }
    item["assets"] = assets
    return item


def search_items() -> list[dict[str, Any]]:
    """Items for the search tests (no files): dates in May-July 2024, cloud 5-90 %, one
    elsewhere, one in another collection, one without eo:cloud_cover, and one acquisition
    listed twice (reprocessed with a newer baseline)."""
    rows = [
        ("S2B_32TPS_20240503_0_L2A", "2024-05-03T10:20:00Z", 5.0, "05.10"),
        ("S2A_32TPS_20240508_0_L2A", "2024-05-08T10:20:00Z", 80.0, "05.10"),
        ("S2B_32TPS_20240513_0_L2A", "2024-05-13T10:20:00Z", 30.0, "05.10"),
        ("S2B_32TPS_20240513_1_L2A", "2024-05-13T10:20:00Z", 30.0, "05.11"),  # reprocessed
        ("S2A_32TPS_20240518_0_L2A", "2024-05-18T10:20:00Z", 59.9, "05.10"),
        ("S2B_32TPS_20240523_0_L2A", "2024-05-23T10:20:00Z", 90.0, "05.10"),
        ("S2A_32TPS_20240707_0_L2A", "2024-07-07T10:20:00Z", 1.0, "05.10"),  # after the interval
    ]
    items = []
    for item_id, when, cloud, baseline in rows:
        platform = "sentinel-2a" if item_id.startswith("S2A") else "sentinel-2b"
        item = _base_item(
            item_id, when, cloud, {"s2:processing_baseline": baseline, "grid:code": "MGRS-32TPS"}
        )
        item["properties"]["platform"] = platform
        item["assets"] = {
            "red": {"href": f"https://example.invalid/{item_id}/B04.tif", "type": "image/tiff"}
        }
        items.append(item)
    far = _base_item(
        "S2B_20LKP_20240510_0_L2A", "2024-05-10T14:00:00Z", 1.0, {"grid:code": "MGRS-20LKP"}
    )
    far["bbox"] = [-63.0, -12.0, -62.0, -11.0]
    l1c = _base_item("S2B_MSIL1C_20240511", "2024-05-11T10:20:00Z", 1.0, {})
    l1c["collection"] = "sentinel-2-l1c"
    unknown = _base_item("S2A_32TPS_20240528_0_L2A", "2024-05-28T10:20:00Z", 0.0, {})
    del unknown["properties"]["eo:cloud_cover"]
    for extra in (far, l1c, unknown):
        extra["assets"] = {}
    return [*items, far, l1c, unknown]
