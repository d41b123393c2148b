"""Reading has bounds: metadata read whole is capped (a zip bomb cannot fill memory), a
FIFO named like a band cannot block the reader, and every output location is checked
before any work starts."""

from __future__ import annotations

import os
import threading
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from s2clouds.errors import SceneFormatError
from s2clouds.io import limits
from s2clouds.io.safe import read_safe

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]


def bomb(safe: Path, archive: Path, padding: int) -> Path:
    """``archive``: the product zipped, its MTD_MSIL1C.xml padded with ``padding`` bytes of
    whitespace (valid XML that compresses about 1000 to 1)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(safe.rglob("*")):
            name = path.relative_to(safe.parent).as_posix()
            if path.name == "MTD_MSIL1C.xml":
                zf.writestr(name, path.read_bytes() + b" " * padding)
            elif path.is_file():
                zf.write(path, name)
    return archive


def test_a_metadata_bomb_in_a_zip_is_refused_in_bounded_memory(
    tmp_path: Path, maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    safe = maker("safe").write(tmp_path)
    archive = bomb(safe, tmp_path / f"{safe.stem}.zip", padding=64 << 20)
    assert archive.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(SceneFormatError, match="larger than 16 MB"):
            read_safe(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * limits.MAX_METADATA_BYTES
    monkeypatch.setattr(limits, "MAX_METADATA_BYTES", 1 << 10)
    with pytest.raises(SceneFormatError, match="MTD_MSIL1C.xml"):
        read_safe(safe)  # the same cap for a folder


def test_a_fifo_named_like_a_band_does_not_hang(tmp_path: Path, maker, refuse: Refuse) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=64)
    os.mkfifo(folder / "B11.tif")
    os.mkfifo(tmp_path / "pipe.tif")
    errors: list[str] = []
    out = str(tmp_path / "mask.tif")

    def run() -> None:
        errors.append(refuse(["predict", str(folder), "-o", out, "--quiet"]))
        errors.append(refuse(["predict", str(tmp_path / "pipe.tif"), "-o", out, "--quiet"]))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the reader blocked on a FIFO"
    assert len(errors) == 2 and all("not a regular file" in e for e in errors)


def test_fifos_given_as_lists_scribbles_labels_or_csv_do_not_hang(
    tmp_path: Path, maker, refuse: Refuse
) -> None:
    tif = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)
    cmc = maker("cmc").write(tmp_path / "cmc")
    (cmc / "classification_tags.csv").unlink()
    for name in ("list.txt", "scribbles.tif", "labels.tif"):
        os.mkfifo(tmp_path / name)
    os.mkfifo(cmc / "classification_tags.csv")
    out = str(tmp_path / "out.tif")
    commands = [
        ["predict", f"@{tmp_path / 'list.txt'}", "-o", str(tmp_path / "masks")],
        ["annotate", str(tif), "--scribbles", str(tmp_path / "scribbles.tif"), "-o", out],
        [
            "labels",
            "translate",
            str(tmp_path / "labels.tif"),
            "--from",
            "canonical",
            "--to",
            "fmask",
            "-o",
            out,
        ],  # fmt: skip
        ["datasets", "info", str(cmc), "--kind", "cmc"],
    ]
    errors: list[str] = []

    def run() -> None:
        errors.extend(refuse(argv) for argv in commands)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"blocked on a FIFO after {len(errors)} commands"
    assert all("not a regular file" in e for e in errors), errors


def test_a_bad_quicklook_folder_is_found_before_the_mask_is_written(
    tmp_path: Path, maker, refuse: Refuse, frozen
) -> None:
    tif = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)
    check = frozen(tmp_path)
    quicklook = tmp_path / "missing" / "ql.png"
    err = refuse(
        ["predict", str(tif), "-o", str(tmp_path / "m.tif"), "--quicklook", str(quicklook)]
    )
    assert "missing" in err and "does not exist" in err
    check()
