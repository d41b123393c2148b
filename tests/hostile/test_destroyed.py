"""Files that a run must never destroy: a device node or a FIFO given as an output, an
earlier mask given to a batch as one of its inputs, a STAC item named like a composite's
summary. Each is refused with one line and exit 2 before anything is written, and the file
is still what it was. (The stale-temporary-file cleaner, which must not delete a user's
look-alike files either, is tested in test_leftovers.py.)"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from s2clouds.cli.main import main

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


@pytest.fixture
def tif(tmp_path: Path, maker) -> Path:
    return maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)


def device_node(path: Path) -> Path:
    """A character device like /dev/null (1, 3) at ``path``: only root may make one, so
    the test never risks the real /dev/null."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def special(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
        return path
    return device_node(path)


def is_special(path: Path) -> bool:
    mode = path.lstat().st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("which", ["mask", "probabilities", "quicklook"])
def test_predict_never_replaces_a_device_or_fifo(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, kind: str, which: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mask = out / "mask.tif"
    target = {"mask": mask, "probabilities": out / "mask.proba.tif", "quicklook": out / "q.png"}
    node = special(kind, target[which])
    check = frozen(tmp_path)
    args = ["predict", str(tif), "-o", str(mask), "--quiet", "--workers", "0"]
    args += {
        "mask": [],
        "probabilities": ["--probabilities"],
        "quicklook": ["--quicklook", str(out / "q.png")],
    }[which]
    err = refuse(args)
    assert str(node) in err and "not a regular file" in err
    assert is_special(node)
    check()
    assert sorted(p.name for p in out.iterdir()) == [node.name]


def test_the_real_dev_null_is_refused_before_any_work(tif: Path, refuse: Refuse) -> None:
    """``-o /dev/null``: refused by the first check (the folder /dev, then the node), never
    replaced by a GeoTIFF, for root too."""
    before = os.stat("/dev/null")
    err = refuse(["predict", str(tif), "-o", "/dev/null", "--quiet", "--workers", "0"])
    assert "/dev/null" in err and "not a regular file" in err
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.parametrize("which", ["c.tif", "c.json", "c.info.tif"])
def test_composite_never_replaces_a_fifo(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, which: str
) -> None:
    node = special("fifo", tmp_path / which)
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
        ]
    )
    assert str(node) in err and "not a regular file" in err
    assert is_special(node)
    check()


@pytest.mark.parametrize("extra", [["--overwrite"], ["--probabilities"]])
def test_a_batch_never_overwrites_a_mask_given_as_its_input(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, extra: list[str]
) -> None:
    """``predict scene.tif out/scene_cloudmask.tif -o out``: the first scene's mask would
    replace the second input (a scene redone with --overwrite, or completed with
    --probabilities). The whole batch is refused before anything is written."""
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "scene_cloudmask.tif"
    main(["predict", str(tif), "-o", str(earlier), "--quiet", "--workers", "0"])
    assert earlier.is_file()
    check = frozen(tmp_path)
    err = refuse(
        ["predict", str(tif), str(earlier), "-o", str(out), "--quiet", "--workers", "0", *extra]
    )
    assert "scene_cloudmask.tif" in err and "is the input file" in err
    check()


def test_a_composite_summary_never_overwrites_an_input_item(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen
) -> None:
    """A STAC item ``c.json`` composited into ``-o c.tif``: the summary ``c.json`` would
    replace it."""
    item = tmp_path / "c.json"
    item.write_text(
        json.dumps(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": "S2X_20210601",
                "properties": {"datetime": "2021-06-01T10:00:00Z"},
                "assets": {
                    "data": {
                        "href": str(tif),
                        "roles": ["data"],
                        "eo:bands": [{"name": b} for b in RGBN],
                    }
                },
            }
        )
    )
    check = frozen(tmp_path)
    err = refuse(
        [
            "composite",
            str(item),
            "-o",
            str(tmp_path / "c.tif"),
            "--score",
            "sen12ms",
            "--workers",
            "0",
            "--quiet",
        ]
    )
    assert "the summary (OUT.json)" in err and "is the input file" in err
    check()
