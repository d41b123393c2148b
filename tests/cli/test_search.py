"""``s2clouds search`` against a STAC API on loopback: filters, pagination, the client-side
cloud filter, one item per acquisition, atomic writes, clear errors; and search -> predict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.cli.main import cli, main
from s2clouds.errors import SearchError
from s2clouds.io.search import SearchQuery, check_datetime, item_filename, parse_bbox, search_items

WANTED = ["S2B_32TPS_20240503_0_L2A", "S2B_32TPS_20240513_1_L2A", "S2A_32TPS_20240518_0_L2A"]
ARGS = [
    "--collection", "sentinel-2-l2a", "--bbox", "10.9,45.9,11.3,46.3",
    "--datetime", "2024-05-01/2024-05-31", "--max-cloud", "60",
]  # fmt: skip


@pytest.fixture(params=["query", "filter", "client"])
def api(request, maker) -> Any:
    make = maker("remote")
    server = make.StacApiServer(
        make.search_items(),
        query_extension=request.param == "query",
        filter_extension=request.param == "filter",
    )
    with make.serving(server):
        yield server


def _search(url: str, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        cli, ["search", "--stac", url, *ARGS, "-o", str(out), *extra], standalone_mode=False
    )


def test_search_writes_one_item_per_matching_acquisition(api, tmp_path: Path) -> None:
    out = tmp_path / "items"
    result = _search(api.url, out)
    assert result.exception is None, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{i}.json" for i in WANTED)
    for item_id in WANTED:
        item = json.loads((out / f"{item_id}.json").read_text())
        assert item["id"] == item_id and item["type"] == "Feature"
        assert item["assets"]["red"]["href"].startswith("https://example.invalid/")  # unsigned
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "datetime", "cloud", "%"]
    assert [line.split()[0] for line in lines[1:4]] == WANTED  # oldest first
    assert lines[1].split()[1:] == ["2024-05-03T10:20:00Z", "5.0"]
    assert "1 repeated acquisition(s) reduced to the newest" in result.output
    posts = [body for method, body in api.requests if method == "POST"]
    assert len(posts) > 1 and any(b.get("token") for b in posts)  # followed the next links
    first = posts[0]
    assert first["collections"] == ["sentinel-2-l2a"] and first["bbox"] == [10.9, 45.9, 11.3, 46.3]
    assert first["datetime"].startswith("2024-05-01")
    if api.query_extension:
        assert first["query"] == {"eo:cloud_cover": {"lte": 60.0}}
    elif api.filter_extension:
        assert first["filter"]["args"] == [{"property": "eo:cloud_cover"}, 60.0]
        assert first["filter-lang"] == "cql2-json" and "query" not in first
    else:  # the API cannot filter: the cloud cover is checked here
        assert "query" not in first
        assert "over --max-cloud dropped here" in result.output
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    # a second run replaces the files in place
    again = _search(api.url, out, "--quiet")
    assert again.exception is None and sorted(p.name for p in out.iterdir()) == sorted(
        f"{i}.json" for i in WANTED
    )


def test_empty_result_is_a_message_not_an_error(api, tmp_path: Path) -> None:
    out = tmp_path / "items"
    result = CliRunner().invoke(
        cli,
        ["search", "--stac", api.url, "--bbox", "0,0,1,1", "--datetime", "2024-05", "-o", str(out)],
        standalone_mode=False,
    )
    assert result.exception is None and result.exit_code == 0
    assert (
        "no items in sentinel-2-l2a match" in result.output and "nothing written" in result.output
    )
    assert not out.exists()


def test_clear_errors(maker, tmp_path: Path, capsys) -> None:
    make = maker("remote")
    out = str(tmp_path / "items")
    cases = [
        (["--bbox", "10,46,11"], "not four numbers W,S,E,N"),
        (["--bbox", "46,10,46.5,200"], "off the globe"),
        (["--bbox", "11,46,10,47"], "west < east"),
        (["--datetime", "2024-13-01/2024-12-31"], "use RFC 3339"),
        (["--datetime", "2024-06-30/2024-05-01"], "ends before it starts"),
        (["--datetime", "../.."], "not an instant or an interval"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as info:
            main(["search", "--stac", "http://127.0.0.1:9", *extra, "-o", out])
        assert info.value.code == 2
        assert message in capsys.readouterr().err
    # nothing listens: a clear error after the retries, exit code 2
    with pytest.raises(SystemExit) as info:
        main(["search", "--stac", "http://127.0.0.1:9/v1", "--retries", "1", "-o", out])
    assert info.value.code == 2
    assert "cannot open the STAC API at http://127.0.0.1:9/v1" in capsys.readouterr().err
    # a server that is not a STAC API
    with make.serving(make.RangeFileServer(tmp_path)) as files, pytest.raises(SystemExit):
        main(["search", "--stac", files.url, "--retries", "0", "-o", out])
    assert "cannot open the STAC API" in capsys.readouterr().err
    assert not Path(out).exists()


def test_library_checks() -> None:
    assert parse_bbox("11, 46, 11.5, 46.5") == (11.0, 46.0, 11.5, 46.5)
    assert check_datetime("2024-05-01T00:00:00Z/..") == "2024-05-01T00:00:00Z/.."
    assert check_datetime("2024-05/2024-05") == "2024-05/2024-05"
    assert item_filename("S2B 32/TPS:1") == "S2B_32_TPS_1.json"
    with pytest.raises(SearchError, match="at least one collection"):
        search_items(SearchQuery(url="http://127.0.0.1:9", collections=()))


def test_search_then_predict_a_remote_item(maker, real_data: Path, tmp_path: Path) -> None:
    """The items search writes are read remotely by predict, like local scenes."""
    make = maker("remote")
    arrays, profile = make.crop_chip(real_data / "oncloudn_chip1")
    make.write_cogs(tmp_path / "www" / "raw", arrays, profile, add=1000)
    with make.serving(make.RangeFileServer(tmp_path / "www")) as files:
        item = make.earth_search_item(f"{files.url}/raw", offset_applied=False)
        item["bbox"] = [11.0, 46.0, 11.2, 46.2]
        with make.serving(make.StacApiServer([item])) as api:
            argv = ["search", "--stac", api.url, "--datetime", "2024-06", "--max-cloud", "20"]
            result = CliRunner().invoke(
                cli, [*argv, "-o", str(tmp_path / "items")], standalone_mode=False
            )
            assert result.exception is None and "wrote 1 item(s)" in result.output, result.output
        written = tmp_path / "items" / f"{item['id']}.json"
        out = tmp_path / "mask.tif"
        runner = CliRunner()
        predicted = runner.invoke(
            cli, ["predict", str(written), "-o", str(out), "--workers", "0"], standalone_mode=False
        )
        assert predicted.exception is None, predicted.output
        assert files.hits("/raw/B04.tif") > 0
    with rasterio.open(out) as ds:
        mask = ds.read(1)
        assert ds.crs == profile["crs"] and mask.shape == (256, 256)
    assert set(np.unique(mask)) <= {0, 1, 2, 3, 255}


def test_max_items_stops_the_search_and_says_so(api, tmp_path: Path) -> None:
    out = tmp_path / "items"
    result = _search(api.url, out, "--max-items", "2")
    assert result.exception is None, result.output
    assert "stopped at --max-items 2; more items match" in result.output
    assert 0 < len(list(out.iterdir())) <= 2
    everything = _search(api.url, tmp_path / "all", "--max-items", "50")
    assert "stopped at --max-items" not in everything.output
