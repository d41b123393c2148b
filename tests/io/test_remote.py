"""Remote STAC items: band files read by HTTP range requests from a loopback server, signed at
read time, with retries that end in a clear per-input error; Earth Search and Planetary
Computer items give the same reflectance as the files read locally (the baseline offset once)."""

from __future__ import annotations

import json
import pickle
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.cli.main import cli
from s2clouds.errors import RemoteReadError
from s2clouds.io import remote
from s2clouds.io.scenes import read_scene
from s2clouds.io.stac import identify_band, offset_applied

FAST_RETRIES = {"GDAL_HTTP_MAX_RETRY": "2", "GDAL_HTTP_RETRY_DELAY": "0.01"}


@pytest.fixture
def served(tmp_path: Path, maker, real_data: Path, monkeypatch) -> Any:
    """Harmonised COGs (``plain/``: reflectance = DN / 10000) and raw baseline 04.00 COGs
    (``raw/``: DN + 1000) of a 256 px crop of On Cloud N chip 1, on a loopback range server."""
    make = maker("remote")
    for key, value in FAST_RETRIES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(remote.SIGN_ENV, raising=False)
    arrays, profile = make.crop_chip(real_data / "oncloudn_chip1")
    root = tmp_path / "www"
    make.write_cogs(root / "plain", arrays, profile)
    make.write_cogs(root / "raw", arrays, profile, add=1000)
    make.write_cogs(tmp_path / "original", arrays, profile)  # the local reference
    with make.serving(make.RangeFileServer(root)) as server:
        yield make, server, tmp_path


def _item(tmp_path: Path, name: str, item: dict[str, Any]) -> Path:
    path = tmp_path / "items" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(item))
    return path


def _local_copy(tmp_path: Path, name: str, item: dict[str, Any], server: Any) -> Path:
    """The same item with its hrefs pointing at the served files on disk (as if downloaded)."""
    text = json.dumps(item).replace(server.url, str(server.root))
    return _item(tmp_path, f"{name}-local", json.loads(text))


def _mask(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _predict(*args: str) -> Any:
    return CliRunner().invoke(
        cli, ["predict", *args, "--workers", "0", "--quiet"], standalone_mode=False
    )


def test_remote_items_read_like_local_files_with_the_offset_once(served) -> None:
    make, server, tmp_path = served
    reference = read_scene(tmp_path / "original")  # DN / 10000, no offset
    expected = reference.read()
    cases = {
        # Earth Search: values already harmonised, flag true -> no offset despite raster:bands
        "es-applied": make.earth_search_item(f"{server.url}/plain", offset_applied=True),
        # Earth Search: raw values, flag false, baseline 05.09 -> -1000 once
        "es-raw": make.earth_search_item(f"{server.url}/raw", offset_applied=False),
        # Planetary Computer: raw values, no raster:bands, baseline 05.09 -> -1000 once
        "pc": make.planetary_computer_item(f"{server.url}/raw"),
    }
    for name, item in cases.items():
        scene = read_scene(_item(tmp_path, name, item))
        assert scene.bands == ("B02", "B03", "B04", "B08"), name
        assert scene.grid == reference.grid and scene.level == "L2A"
        np.testing.assert_array_equal(scene.read(), expected, err_msg=name)
        local = read_scene(_local_copy(tmp_path, name, item, server))
        np.testing.assert_array_equal(local.read(), expected, err_msg=f"{name} local")
    assert server.hits("/plain/B04.tif") > 0 and all(
        rng is None or rng.startswith("bytes=") for _, _, _, rng in server.log
    )
    # the JPEG 2000 copies, SCL, thumbnail and metadata were never requested
    assert not any("/missing/" in path for _, path, _, _ in server.log)
    # old baseline: no offset, flag or not
    old = make.earth_search_item(f"{server.url}/plain", offset_applied=False, baseline="03.01")
    np.testing.assert_array_equal(read_scene(_item(tmp_path, "old", old)).read(), expected)


def test_remote_predict_equals_local_predict(served) -> None:
    make, server, tmp_path = served
    item = make.earth_search_item(f"{server.url}/raw", offset_applied=False)
    remote_item, local_item = _item(tmp_path, "es", item), _local_copy(tmp_path, "es", item, server)
    pc_item = _item(tmp_path, "pc", make.planetary_computer_item(f"{server.url}/raw"))
    masks = {}
    for name, source in {"remote": remote_item, "local": local_item, "pc": pc_item}.items():
        result = _predict(str(source), "-o", str(tmp_path / f"{name}.tif"))
        assert result.exception is None, result.output
        masks[name] = _mask(tmp_path / f"{name}.tif")
    np.testing.assert_array_equal(masks["remote"], masks["local"])
    np.testing.assert_array_equal(masks["pc"], masks["local"])
    assert len(np.unique(masks["local"])) > 1  # a real mask, not one class
    with rasterio.open(tmp_path / "remote.tif") as a, rasterio.open(tmp_path / "local.tif") as b:
        assert a.crs == b.crs and a.transform == b.transform


SIGNER = """
CALLS = []
TOKEN = {"value": "one"}

def sign(href):
    CALLS.append(href)
    return href + "?sig=" + TOKEN["value"]
"""


def test_signing_hook_runs_at_every_open_not_when_the_scene_is_built(served, monkeypatch) -> None:
    make, server, tmp_path = served
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "loopback_signer.py").write_text(textwrap.dedent(SIGNER))
    monkeypatch.syspath_prepend(str(tmp_path / "hooks"))
    monkeypatch.delitem(sys.modules, "loopback_signer", raising=False)
    remote.resolve_signer.cache_clear()  # hooks are loaded once per process
    import loopback_signer  # type: ignore[import-not-found]

    server.signature = "one"
    item = _item(tmp_path, "es", make.earth_search_item(f"{server.url}/plain", offset_applied=True))
    # unsigned: refused with a hint at --sign
    with pytest.raises(RemoteReadError, match="403.*refused access: a signed URL may be needed"):
        read_scene(item)
    scene = read_scene(item, sign="loopback_signer:sign")  # the job graph is built here
    built = len(loopback_signer.CALLS)
    assert built == len(scene.sources)  # one header read per band file
    assert all(s.sign == "loopback_signer:sign" for s in scene.sources)
    # the signature expires; a scene that kept signed URLs would now get 403
    loopback_signer.TOKEN["value"] = server.signature = "two"
    first = len(server.log)
    data = scene.read()
    assert len(loopback_signer.CALLS) == 2 * built  # signed again at each open
    later = [query for _, _, query, _ in server.log[first:]]
    assert later and all(query == "sig=two" for query in later)
    # a scene crosses to a Dask worker as a pickle: the hook travels by name
    shipped = pickle.loads(pickle.dumps(scene))
    loopback_signer.TOKEN["value"] = server.signature = "three"
    np.testing.assert_array_equal(shipped.read(), data)
    assert len(loopback_signer.CALLS) == 3 * built
    # the hook may come from the environment too, and the CLI option gives it by name
    monkeypatch.setenv(remote.SIGN_ENV, "loopback_signer:sign")
    assert read_scene(item).sources[0].sign == "loopback_signer:sign"
    result = _predict(str(item), "-o", str(tmp_path / "m.tif"), "--sign", "loopback_signer:sign")
    assert result.exception is None, result.output
    # a hook that gives a stale signature fails, and the signature never appears in errors
    loopback_signer.TOKEN["value"], server.signature = "stale", "four"
    with pytest.raises(RemoteReadError) as info:
        scene.read()
    assert "sig=" not in str(info.value) and "signature may have expired" in str(info.value)
    # a file that is not there is not retried and says so
    loopback_signer.TOKEN["value"] = server.signature = "five"
    item_404 = make.earth_search_item(f"{server.url}/gone", offset_applied=True)
    with pytest.raises(RemoteReadError, match="404.*not at that URL"):
        read_scene(_item(tmp_path, "gone", item_404), sign="loopback_signer:sign")


def test_unreachable_files_fail_per_input_after_retries(served) -> None:
    make, server, tmp_path = served
    good = _item(
        tmp_path, "good", make.earth_search_item(f"{server.url}/plain", offset_applied=True)
    )
    server.fail_paths.add("/busy/B02.tif")
    busy_item = make.earth_search_item(f"{server.url}/busy", offset_applied=True, item_id="busy")
    busy = _item(tmp_path, "busy", busy_item)
    closed = make.earth_search_item("http://127.0.0.1:9/x", offset_applied=True, item_id="closed")
    closed_path = _item(tmp_path, "closed", closed)
    with pytest.raises(
        RemoteReadError, match=r"/busy/B02.tif \(HTTP .* 503\); gave up after 2 retr"
    ):
        read_scene(busy)
    assert server.hits("/busy/B02.tif") >= 3  # the first try and two retries
    with pytest.raises(RemoteReadError, match=r"cannot read remote file http://127.0.0.1:9/x/B02"):
        read_scene(closed_path)
    out = tmp_path / "batch"
    result = CliRunner().invoke(
        cli,
        ["predict", str(good), str(busy), str(closed_path), "-o", str(out), "--workers", "0"],
        standalone_mode=False,
    )
    assert isinstance(result.exception, SystemExit) and result.exception.code == 1
    log = json.loads((out / "s2clouds_run.json").read_text())
    records = {Path(r["input"]).stem: r for r in log["scenes"]}
    assert records["good"]["status"] == "done"
    for name in ("busy", "closed"):
        assert records[name]["status"] == "failed"
        assert "cannot read remote file" in records[name]["error"]


def test_band_keys_of_both_catalogues_map_to_canonical_names() -> None:
    earth_search = {
        "coastal": "B01",
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "rededge1": "B05",
        "rededge2": "B06",
        "rededge3": "B07",
        "nir": "B08",
        "nir08": "B8A",
        "nir09": "B09",
        "cirrus": "B10",
        "swir16": "B11",
        "swir22": "B12",
        "blue-jp2": "B02",
        "nir08-jp2": "B8A",
    }
    for key, band in earth_search.items():
        assert identify_band(key, {}) == band, key
    for band in ("B01", "B02", "B05", "B08", "B8A", "B09", "B11", "B12"):
        assert identify_band(band, {"name": band}) == band
        assert identify_band(f"{band}_20m", {}) == band  # CDSE style keys
    for key in ("SCL", "scl", "AOT", "WVP", "visual", "thumbnail"):
        assert identify_band(key, {}) is None
    # a common name alone, and a wavelength alone (micrometres)
    assert identify_band("x", {"common_name": "nir08"}) == "B8A"
    assert identify_band("x", {"center_wavelength": 2.19}) == "B12"
    assert offset_applied({"earthsearch:boa_offset_applied": True}) is True
    assert offset_applied({"sentinel:boa_offset_applied": "false"}) is False
    assert offset_applied({}) is None


def test_planetary_computer_signer_caches_tokens(served, monkeypatch) -> None:
    make, server, tmp_path = served
    monkeypatch.setenv("S2CLOUDS_PC_SAS_URL", f"{server.url}/token")
    monkeypatch.setattr(remote, "_PC_TOKENS", {})
    sign = remote.resolve_signer("planetary-computer")
    assert sign is remote.sign_planetary_computer
    href = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/32/T/PS/B04.tif"
    signed = sign(href)
    assert signed == f"{href}?st=x&se=y&sig=sentinel2l2a01-sentinel2-l2"
    assert sign(href.replace("B04", "B08")).endswith("sig=sentinel2l2a01-sentinel2-l2")
    assert server.token_requests == 1  # cached until shortly before expiry
    assert sign(signed) == signed  # already signed
    assert sign("https://example.invalid/B04.tif") == "https://example.invalid/B04.tif"
    with pytest.raises(RemoteReadError, match="cannot load the signing hook 'no_such_module:f'"):
        remote.resolve_signer("no_such_module:f")
    with pytest.raises(RemoteReadError, match="entry point"):
        remote.resolve_signer("not-registered")
    assert remote.gdal_path("s3://bucket/a/B04.tif") == "/vsis3/bucket/a/B04.tif"
    assert remote.gdal_path("https://h/B04.tif") == "/vsicurl/https://h/B04.tif"
    assert remote.gdal_path("/data/B04.tif") == "/data/B04.tif"
