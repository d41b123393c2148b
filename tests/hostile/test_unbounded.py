"""Work that had no bound: a composite grid of the whole world, at 1 cm, or over inputs on
two continents is estimated first and refused above ``--max-pixels`` (one line, exit 2, at
once); a remote band file on a server that accepts the connection and never answers times
out. (Local Dask workers above the core count are capped: test_cluster_security.py.)"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.io.limits import MAX_OUTPUT_PIXELS

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


def write_tile(path: Path, origin: tuple[float, float], size: int = 32) -> Path:
    rng = np.random.default_rng(int(origin[1]) % 1000)
    data = (
        np.array([500, 800, 600, 3000])[:, None, None] + rng.integers(0, 300, size=(4, size, size))
    ).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, *origin[:1], 0, -10, origin[1]),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for i, band in enumerate(RGBN, start=1):
            ds.set_band_description(i, band)
    return path


def composite(inputs: list[Path], out: Path, *extra: str) -> list[str]:
    return [
        "composite",
        *map(str, inputs),
        "-o",
        str(out),
        "--score",
        "sen12ms",
        "--workers",
        "0",
        "--quiet",
        *extra,
    ]


@pytest.mark.parametrize(
    "option",
    [
        ["--grid", "EPSG:4326,0.0001", "--bounds", "-180,-90,180,90"],  # the world at ~10 m
        ["--bounds", "-20000000,-10000000,20000000,10000000"],  # the world in metres
        ["--grid", "EPSG:32633,0.01"],  # 1 cm pixels
    ],
)
def test_huge_composite_grids_are_refused_at_once(
    tmp_path: Path, refuse: Refuse, frozen: Frozen, option: list[str]
) -> None:
    tile = write_tile(tmp_path / "a.tif", (500_000.0, 5_000_000.0))
    check = frozen(tmp_path)
    started = time.monotonic()
    err = refuse(composite([tile], tmp_path / "c.tif", *option))
    assert time.monotonic() - started < 30
    assert "--max-pixels" in err or "pixels of" in err
    check()


def test_inputs_on_two_continents_are_refused(
    tmp_path: Path, refuse: Refuse, frozen: Frozen
) -> None:
    """Two 320 m chips 4000 km apart: a union of 400 000 x 32 px (13 Mpx, under the size
    limit) whose windows are nearly all empty, which ran for minutes; refused at once. Far
    apart across and along (a 4000 x 4000 km union) the size limit refuses it too."""
    near = write_tile(tmp_path / "europe.tif", (500_000.0, 5_000_000.0))
    far = write_tile(tmp_path / "africa.tif", (500_000.0, 1_000_000.0))
    aside = write_tile(tmp_path / "asia.tif", (4_500_000.0, 5_000_000.0))
    check = frozen(tmp_path)
    started = time.monotonic()
    err = refuse(composite([near, far], tmp_path / "c.tif"))
    assert "far apart" in err and "--bounds" in err
    err = refuse(composite([near, far, aside], tmp_path / "c.tif"))
    assert "far apart" in err or f"{MAX_OUTPUT_PIXELS:.3g}" in err
    assert time.monotonic() - started < 30
    check()


def test_max_pixels_is_the_limit(tmp_path: Path, refuse: Refuse) -> None:
    from s2clouds.cli.main import main

    tile = write_tile(tmp_path / "a.tif", (500_000.0, 5_000_000.0))
    assert "--max-pixels" in refuse(composite([tile], tmp_path / "c.tif", "--max-pixels", "1000"))
    main(composite([tile], tmp_path / "c.tif", "--max-pixels", "1024"))
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert ds.shape == (32, 32)


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A local HTTP port that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


@pytest.mark.parametrize("command", ["predict", "composite"])
def test_a_silent_remote_server_times_out(
    tmp_path: Path,
    refuse: Refuse,
    frozen: Frozen,
    monkeypatch: pytest.MonkeyPatch,
    silent_server: tuple[int, list[socket.socket]],
    command: str,
) -> None:
    """The STAC item's band files are on a server that accepts and never answers: the run
    gives up after the low-speed limit of each try (made short here; 15 s by default)."""
    from s2clouds.io import remote

    port, accepted = silent_server
    for key in remote.GDAL_HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setitem(remote.GDAL_HTTP_DEFAULTS, "GDAL_HTTP_LOW_SPEED_TIME", "1")
    monkeypatch.setitem(remote.GDAL_HTTP_DEFAULTS, "GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setitem(remote.GDAL_HTTP_DEFAULTS, "GDAL_HTTP_RETRY_DELAY", "0")
    item = tmp_path / "item.json"
    item.write_text(
        json.dumps(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": "S2X_20210601",
                "properties": {"datetime": "2021-06-01T10:00:00Z"},
                "assets": {
                    band: {
                        "href": f"http://127.0.0.1:{port}/{band}.tif",
                        "roles": ["data"],
                        "eo:bands": [{"name": band}],
                    }
                    for band in RGBN
                },
            }
        )
    )
    check = frozen(tmp_path)
    started = time.monotonic()
    extra = ["--score", "sen12ms"] if command == "composite" else []
    err = refuse(
        [command, str(item), "-o", str(tmp_path / "m.tif"), "--workers", "0", "--quiet", *extra]
    )
    assert time.monotonic() - started < 30
    assert f"127.0.0.1:{port}" in err and "too slow" in err
    assert accepted  # the server was reached: the limit, not a refused connection, ended it
    check()


def test_the_default_http_limits_bound_a_silent_server() -> None:
    """Every remote open runs with a low-speed limit: a silent server costs at most
    (retries + 1) x LOW_SPEED_TIME + the retry delays, well under two minutes."""
    from s2clouds.io.remote import GDAL_HTTP_DEFAULTS

    tries = int(GDAL_HTTP_DEFAULTS["GDAL_HTTP_MAX_RETRY"]) + 1
    delay = float(GDAL_HTTP_DEFAULTS["GDAL_HTTP_RETRY_DELAY"])
    delays = sum(delay * 2**k for k in range(tries - 1))
    worst = tries * float(GDAL_HTTP_DEFAULTS["GDAL_HTTP_LOW_SPEED_TIME"]) + delays
    assert float(GDAL_HTTP_DEFAULTS["GDAL_HTTP_LOW_SPEED_LIMIT"]) >= 1
    assert worst <= 120
