"""Cases that ended in a traceback and now end in one line with exit 2 (or in the right
result): a disk that fills up while writing, file names too long for the file system or not
UTF-8, a run log that is a folder or holds entries of the wrong kind, STAC items whose
properties are a list or nest 10 000 deep, infinite composite bounds, and a composite
resume folder holding truncated, pickled or mistyped parts (never unpickled)."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.cli.main import main

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


@pytest.fixture
def tif(tmp_path: Path, maker) -> Path:
    return maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=256)


# ----------------------------------------------------------------------------- disk full
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 kB tmpfs (root only) filled up by a file ``filler``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        handle = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(handle, b"x" * 4096)
        os.close(handle)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("what", ["mask", "probabilities", "composite"])
def test_a_full_disk_is_one_line_and_leaves_nothing(
    tif: Path, tiny_disk: Path, refuse: Refuse, what: str
) -> None:
    if what == "composite":
        args = ["composite", str(tif), "-o", str(tiny_disk / "c.tif"), "--score", "sen12ms"]
    else:
        args = ["predict", str(tif), "-o", str(tiny_disk / "m.tif")]
        args += ["--probabilities"] if what == "probabilities" else []
    err = refuse([*args, "--workers", "0", "--quiet"])
    assert "cannot write" in err and "free space on that disk" in err
    assert os.listdir(tiny_disk) == ["filler"]  # no output, temporary file or parts folder


# --------------------------------------------------------------------------- file names
@pytest.mark.parametrize("command", ["predict", "composite"])
def test_a_name_too_long_for_the_file_system(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, command: str
) -> None:
    out = tmp_path / ("m" * 240 + ".tif")
    check = frozen(tmp_path)
    extra = ["--score", "sen12ms"] if command == "composite" else []
    err = refuse([command, str(tif), "-o", str(out), "--workers", "0", "--quiet", *extra])
    assert "too long" in err and "shorter name" in err
    check()


def non_utf8(folder: Path, name: bytes) -> Path:
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def test_non_utf8_names(tif: Path, tmp_path: Path, maker, refuse: Refuse, frozen: Frozen) -> None:
    odd_tif = non_utf8(tmp_path, b"sc\xffene.tif")
    os.rename(maker("geotiff").write_multiband(tmp_path / "b.tif", RGBN, size=64), odd_tif)
    odd_folder = non_utf8(tmp_path, b"fold\xfer")
    os.rename(maker("geotiff").write_band_folder(tmp_path / "f", RGBN, size=64), odd_folder)
    check = frozen(tmp_path)
    for source in (odd_tif, odd_folder):
        err = refuse(["predict", str(source), "-o", str(tmp_path / "m.tif"), "--quiet"])
        assert "not valid UTF-8" in err and ("0xff" in err or "0xfe" in err)
    for option in ("-o", "--quicklook"):
        args = ["predict", str(tif), "-o", str(tmp_path / "m.tif"), "--quiet", "--workers", "0"]
        args[args.index(option) + 1 if option == "-o" else len(args) :] = (
            [str(non_utf8(tmp_path, b"m\xfd.tif")), "--quiet", "--workers", "0"]
            if option == "-o"
            else [option, str(non_utf8(tmp_path, b"q\xfd.png"))]
        )
        assert "not valid UTF-8" in refuse(args)
    check()


# ----------------------------------------------------------------------------- run logs
def test_a_run_log_that_is_a_folder(tif: Path, tmp_path: Path, refuse: Refuse) -> None:
    out = tmp_path / "out"
    (out / "s2clouds_run.json").mkdir(parents=True)
    (out / "s2clouds_run.json" / "keep.txt").write_text("mine")
    err = refuse(["predict", str(tif), str(tif), "-o", str(out), "--quiet", "--workers", "0"])
    assert "s2clouds_run.json" in err and "a folder" in err
    assert (out / "s2clouds_run.json" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["s2clouds_run.json"]


@pytest.mark.parametrize(
    "log",
    [
        {"scenes": [1, "x", None, {"output": 5}, {"output": ["a"]}]},
        {"scenes": {"a": 1}},
        [1, 2],
        {"scenes": [{"output": "OUT", "cloud_percent": "abc", "windows": "x"}]},
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_a_run_log_of_the_wrong_shape_is_replaced(
    tif: Path, tmp_path: Path, maker, log: object
) -> None:
    """A damaged log (entries that are not objects, numbers that are text, JSON nested
    10 000 deep) is the run's own output: the batch runs and writes a good one; a skipped
    scene whose logged numbers are text keeps none of them."""
    out = tmp_path / "out"
    out.mkdir()
    other = maker("geotiff").write_multiband(tmp_path / "other.tif", RGBN, size=64)
    main(
        ["predict", str(other), "-o", str(out / "other_cloudmask.tif"), "--quiet", "--workers", "0"]
    )
    text = log if isinstance(log, str) else json.dumps(log)
    text = text.replace("OUT", str(out / "other_cloudmask.tif"))
    (out / "s2clouds_run.json").write_text(text)
    main(["predict", str(tif), str(other), "-o", str(out), "--quiet", "--workers", "0"])
    written = json.loads((out / "s2clouds_run.json").read_text())
    assert [s["status"] for s in written["scenes"]] == ["done", "skipped"]
    assert written["scenes"][1]["cloud_percent"] is None


# -------------------------------------------------------------------------- STAC items
@pytest.mark.parametrize("damage", ["list", "text", "deep"])
@pytest.mark.parametrize("command", ["predict", "composite"])
def test_stac_items_of_the_wrong_shape(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, damage: str, command: str
) -> None:
    item_path = tmp_path / "item.json"
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2X_20210601",
        "properties": {"datetime": "2021-06-01T10:00:00Z"},
        "assets": {
            "data": {"href": str(tif), "roles": ["data"], "eo:bands": [{"name": b} for b in RGBN]}
        },
    }
    if damage == "deep":
        text = json.dumps(item)[:-1] + ', "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    else:
        item["properties"] = [1, 2] if damage == "list" else "sunny"
        text = json.dumps(item)
    item_path.write_text(text)
    check = frozen(tmp_path)
    extra = ["--score", "sen12ms"] if command == "composite" else []
    err = refuse(
        [
            command,
            str(item_path),
            "-o",
            str(tmp_path / "m.tif"),
            "--workers",
            "0",
            "--quiet",
            *extra,
        ]
    )
    assert "item.json" in err
    assert ("nested too deep" in err) if damage == "deep" else ("not an object" in err)
    check()


# ------------------------------------------------------------------ composite options
@pytest.mark.parametrize(
    "option",
    [
        ["--bounds", "-inf,0,inf,1"],
        ["--bounds", "0,nan,1,1"],
        ["--grid", "EPSG:32633,inf"],
        ["--grid", "EPSG:32633,nan"],
    ],
)
def test_composite_grids_must_be_finite(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, option: list[str]
) -> None:
    check = frozen(tmp_path)
    err = refuse(
        [
            "composite",
            str(tif),
            "-o",
            str(tmp_path / "c.tif"),
            "--score",
            "sen12ms",
            "--workers",
            "0",
            "--quiet",
            *option,
        ]
    )
    assert option[0] in err
    check()


# --------------------------------------------------------------------- resume folders
class Tripwire:
    """Unpickling this creates a file: a part that is unpickled would leave it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickled", "object", "shape"])
def test_damaged_resume_parts_are_recomputed_never_unpickled(
    tmp_path: Path, maker, damage: str
) -> None:
    from s2clouds.mosaic.composite import CompositeOptions, PartStore, plan_composite

    scenes = [
        maker("geotiff").write_multiband(tmp_path / f"s{k}.tif", RGBN, size=64) for k in range(2)
    ]
    options = CompositeOptions(scorer="sen12ms", block=32, progress=False, quicklook=False)
    reference = tmp_path / "ref" / "c.tif"
    reference.parent.mkdir()
    args = [
        "composite",
        *map(str, scenes),
        "--score",
        "sen12ms",
        "--block",
        "32",
        "--workers",
        "0",
        "--quiet",
        "--no-quicklook",
    ]
    main([*args, "-o", str(reference)])
    out = tmp_path / "run" / "c.tif"
    out.parent.mkdir()
    plan, _ = plan_composite(list(map(str, scenes)), options)
    store = PartStore(out, plan, options.block)
    store.folder.mkdir()
    tripwire = tmp_path / "unpickled"
    for window in plan.grid.windows(options.block):
        part = store.path(window)
        if damage == "truncated":
            np.savez(part, values=np.zeros((4, 32, 32), np.uint16))
            part.write_bytes(part.read_bytes()[:100])
        elif damage == "garbage":
            part.write_bytes(b"PK\x03\x04 not a zip")
        elif damage == "pickled":
            part.write_bytes(pickle.dumps(Tripwire(str(tripwire))))
        elif damage == "object":
            np.savez(
                part,
                values=np.array([Tripwire(str(tripwire))], dtype=object),
                info=np.zeros((3, 32, 32), np.uint16),
                clear=np.zeros(2, np.int64),
                valid=np.zeros(2, np.int64),
                errors=np.array(["", ""]),
            )
        else:  # arrays of the wrong shape: a part of another run
            np.savez(
                part,
                values=np.zeros((4, 8, 8), np.uint16),
                info=np.zeros((3, 8, 8), np.uint16),
                clear=np.zeros(2, np.int64),
                valid=np.zeros(2, np.int64),
                errors=np.array(["", ""]),
            )
    main([*args, "-o", str(out)])
    assert not tripwire.exists()
    with rasterio.open(out) as got, rasterio.open(reference) as want:
        np.testing.assert_array_equal(got.read(), want.read())
    assert not store.folder.exists()
