"""The annotation app in a real browser: headless Chromium from the system's package manager
(``apt-get install chromium``, launched by path; Playwright downloads nothing) on a project of
two real On Cloud N chips. An annotator paints a few strokes of clear and cloud on each chip,
runs the assistant, accepts, saves; the saved GeoTIFF must sit on the chip's grid, hold
canonical classes and agree with the chip's label (cloud F1 >= 0.8). Screenshots of the main
views go to the test's folder (and to $S2CLOUDS_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from scipy import ndimage

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("lightgbm")
sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: install the system's chromium (apt-get install -y chromium; "
        ".ci/run does it) to run the browser test",
        allow_module_level=True,
    )

from s2clouds.app.project import load_project  # noqa: E402
from s2clouds.app.server import create_app  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(chips_project: Path) -> Iterator[str]:
    """The app on a free localhost port, in a thread, with the Host check of ``serve``."""
    import uvicorn

    app = create_app(load_project(chips_project), allowed_hosts=["127.0.0.1", "localhost"])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    instance.should_exit = True
    thread.join(10)


def stroke_rows(
    label: np.ndarray, value: int, count: int, length: int, seed: int
) -> list[tuple[int, int, int]]:
    """``count`` horizontal strokes (row, col0, col1) of ``length`` px lying well inside the
    label's ``value`` areas (as an annotator would draw them, away from the edges)."""
    inner = ndimage.binary_erosion(label == value, iterations=12)
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(inner)
    strokes: list[tuple[int, int, int]] = []
    for i in rng.permutation(rows.size):
        r, c = int(rows[i]), int(cols[i])
        fits = c + length < label.shape[1] and inner[r, c : c + length].all()
        if fits and all(abs(r - s[0]) > 40 or abs(c - s[1]) > 60 for s in strokes):
            strokes.append((r, c, c + length))
        if len(strokes) == count:
            break
    assert len(strokes) == count, f"no room for {count} strokes of class {value}"
    return strokes


def paint(page: Any, strokes: list[tuple[int, int, int]]) -> None:
    for row, c0, c1 in strokes:
        x0, y0 = page.evaluate(f"s2app.toClient({c0 + 0.5}, {row + 0.5})")
        x1, y1 = page.evaluate(f"s2app.toClient({c1 + 0.5}, {row + 0.5})")
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=12)
        page.mouse.up()


def count_scribbles(page: Any) -> int:
    return int(page.evaluate("s2app.state.scribbles.filter(v => v !== 255).length"))


def square_inside(area: np.ndarray, size: int) -> tuple[int, int]:
    """The top-left corner of a ``size`` px square well inside ``area``."""
    inner = ndimage.binary_erosion(area, iterations=8)
    height, width = area.shape
    corners = [
        (r, c)
        for r in range(0, height - size, 4)
        for c in range(0, width - size, 4)
        if inner[r : r + size + 1, c : c + size + 1].all()
    ]
    assert corners, "no room for the polygon"
    return corners[len(corners) // 2]


def cloud_f1(mask: np.ndarray, label: np.ndarray) -> float:
    predicted = np.isin(mask, [1, 2])
    truth = label == 1
    tp = np.sum(predicted & truth)
    return float(2 * tp / (predicted.sum() + truth.sum()))


def test_paint_predict_accept_save_in_a_real_browser(
    server: str, chips_project: Path, real_data: Path, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server)
        status = sync_api.expect(page.locator("#status"))
        for n in (1, 2):
            chip = f"chip{n}"
            if n == 2:
                page.select_option("#image", chip)
            status.to_have_text(re.compile(f"^{chip}:"))
            page.wait_for_timeout(500)  # tiles
            if n == 1:  # the keys
                page.keyboard.press("?")
                assert page.is_visible("#help")
                page.screenshot(path=str(shots / "keys.png"))
                page.keyboard.press("?")
                assert not page.is_visible("#help")
            with rasterio.open(real_data / f"oncloudn_{chip}" / "label.tif") as ds:
                label = ds.read(1)
            page.keyboard.press("]")  # a bigger brush: 8 -> 10 px
            page.keyboard.press("1")  # clear
            paint(page, stroke_rows(label, 0, 3, 40, seed=n))
            page.keyboard.press("2")  # thick cloud
            paint(page, stroke_rows(label, 1, 3, 40, seed=10 + n))
            painted = count_scribbles(page)
            assert painted > 400
            if n == 2:  # the other tools: a polygon and a flood fill inside the cloud, erasing
                r, c = square_inside(label == 1, 24)
                page.keyboard.press("g")
                for y, x in ((r, c), (r, c + 24), (r + 24, c + 24), (r + 24, c)):
                    page.mouse.click(*page.evaluate(f"s2app.toClient({x}, {y})"))
                page.keyboard.press("Enter")
                polygon = count_scribbles(page) - painted
                filled = page.evaluate(
                    f"(() => {{ let k = 0; for (let y = {r}; y < {r + 24}; y++) "
                    f"for (let x = {c}; x < {c + 24}; x++) k += s2app.state.scribbles[y * 512 + x] === 1; "
                    "return k; })()"
                )
                assert filled >= 0.9 * 24 * 24 and 0 < polygon <= 26 * 26, (filled, polygon)
                page.keyboard.press("f")
                page.mouse.click(*page.evaluate(f"s2app.toClient({c + 12}, {r + 12})"))
                sync_api.expect(page.locator("#status")).to_have_text(re.compile("^flood fill"))
                assert count_scribbles(page) >= painted + polygon
                page.keyboard.press("z")  # undo the flood fill
                assert count_scribbles(page) == painted + polygon
                page.keyboard.press("e")  # erase a stroke of the polygon
                x0, y0 = page.evaluate(f"s2app.toClient({c + 12}, {r - 4})")
                x1, y1 = page.evaluate(f"s2app.toClient({c + 12}, {r + 28})")
                page.mouse.move(x0, y0)
                page.mouse.down()
                page.mouse.move(x1, y1, steps=8)
                page.mouse.up()
                assert count_scribbles(page) < painted + polygon
                page.keyboard.press("b")
                painted = count_scribbles(page)
            page.screenshot(path=str(shots / f"{chip}-strokes.png"))
            page.click("#predict")
            status.to_have_text(re.compile("^proposal ready"), timeout=60_000)
            page.screenshot(path=str(shots / f"{chip}-proposal.png"))
            page.keyboard.press("a")
            accepted = page.evaluate("s2app.state.mask.filter(v => v !== 255).length")
            assert accepted == label.size
            page.keyboard.press("z")  # undo the accept, then redo it
            assert page.evaluate("s2app.state.mask.filter(v => v !== 255).length") == painted
            page.keyboard.press("y")
            assert page.evaluate("s2app.state.mask.filter(v => v !== 255).length") == accepted
            page.keyboard.press("s")
            page.wait_for_selector("#agreement table", timeout=30_000)
            page.screenshot(path=str(shots / f"{chip}-saved.png"))
            if n == 1:  # the other views, switched by key
                for view in ("nir", "ndvi"):
                    page.keyboard.press("v")
                    assert page.evaluate("s2app.state.view") == view
                    page.wait_for_timeout(400)
                    page.screenshot(path=str(shots / f"{chip}-view-{view}.png"))
                page.keyboard.press("c")  # side by side: the current view and the next
                assert page.evaluate("s2app.state.compare") == "truecolor"
                # a point of the right pane maps to the same image pixel as the left one
                x, y = page.evaluate("s2app.toClient(100, 200)")
                half = page.evaluate("document.getElementById('canvas').clientWidth / 2")
                right = page.evaluate(f"s2app.toImage({x + half}, {y})")
                assert abs(right[0] - 100) < 1.5 and abs(right[1] - 200) < 1.5, right
                page.wait_for_timeout(400)
                page.screenshot(path=str(shots / f"{chip}-side-by-side.png"))
                page.keyboard.press("c")
                assert page.evaluate("s2app.state.compare") is None
            agreement = page.evaluate("s2app.state.lastAgreement")
            reference = agreement["reference"][0]
            assert reference["user"] == "alice" and reference["classes"]["cloud"]["f1"] >= 0.8

            saved = chips_project / "annotations" / "alice" / f"{chip}.tif"
            with (
                rasterio.open(saved) as out,
                rasterio.open(real_data / f"oncloudn_{chip}" / "B02.tif") as band,
            ):
                assert out.crs == band.crs and out.transform == band.transform
                assert out.shape == band.shape
                mask = out.read(1)
            assert set(np.unique(mask)) <= {0, 1, 2, 3} and {0, 1} <= set(np.unique(mask))
            f1 = cloud_f1(mask, label)
            assert f1 >= 0.8, f"{chip}: cloud F1 {f1:.3f} from a few strokes"
            with rasterio.open(saved.with_name(f"{chip}.scribbles.tif")) as ds:
                scribbles = ds.read(1)
            assert set(np.unique(scribbles)) == {0, 1, 255}
        page.goto(server + "progress")
        page.wait_for_selector("#progress tbody tr")
        page.screenshot(path=str(shots / "progress.png"))
        browser.close()
    assert not errors, errors
    target = os.environ.get("S2CLOUDS_SCREENSHOTS")
    if target:
        shutil.copytree(shots, target, dirs_exist_ok=True)
