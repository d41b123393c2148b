"""The HTML benchmark report in headless Chromium (launched by path; nothing downloaded):
the confusion grid wraps within the page and the per-image table sorts by a clicked column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.benchmark import get_protocol
from s2clouds.benchmark.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed")


def test_report_grid_wraps_and_table_sorts(tmp_path: Path) -> None:
    protocol = get_protocol("cloudsen12")
    rng = np.random.default_rng(0)
    for masker in ("a-masker-with-a-long-name", "b", "c", "d", "e"):
        for i in range(5):
            truth = rng.integers(0, 4, (16, 16), dtype=np.uint8)
            pred = np.where(rng.random(truth.shape) < 0.7, truth, 0).astype(np.uint8)
            protocol.update(masker, pred, truth, meta={"id": f"img{i}"})
    page_path = write_report(protocol, tmp_path / "report").html
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        # five confusion figures do not fit one row of a 1200 px page: the grid wraps
        tops = page.eval_on_selector_all(
            "div.grid figure img[src*='confusion_']",
            "els => els.map(e => e.getBoundingClientRect().top)",
        )
        assert len(tops) == 5 and len(set(round(t) for t in tops)) > 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        table = "table.sortable"
        column = page.eval_on_selector_all(f"{table} th", "ths => ths.map(t => t.textContent)")
        boa = next(i for i, text in enumerate(column) if text.startswith("boa_cloud"))
        page.click(f"{table} th >> nth={boa}")
        values = page.eval_on_selector_all(
            f"{table} tbody tr", f"rows => rows.map(r => r.cells[{boa}].textContent)"
        )
        numbers = [float(v) for v in values if v != "-"]
        assert numbers == sorted(numbers) and len(values) == 25
        page.click(f"{table} th >> nth={boa}")
        again = page.eval_on_selector_all(
            f"{table} tbody tr", f"rows => rows.map(r => r.cells[{boa}].textContent)"
        )
        assert [float(v) for v in again if v != "-"] == sorted(numbers, reverse=True)
        browser.close()
    assert not errors
