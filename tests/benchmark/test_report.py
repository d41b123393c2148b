"""Reports: CSV round trip, pages and plots, and rebuilding everything from the CSV alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s2clouds.benchmark import BenchmarkError, CloudSEN12Protocol, get_protocol
from s2clouds.benchmark.report import (
    build_report,
    format_value,
    read_csv,
    render_summary_text,
    write_csv,
    write_report,
)
from s2clouds.errors import OutputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cloudsen12() -> CloudSEN12Protocol:
    rng = np.random.default_rng(0)
    protocol = CloudSEN12Protocol(masker_tasks={"s2cloudless": ["cloud"]})
    for masker, skill in (("fmask", 0.8), ("s2cloudless", 0.6)):
        for i in range(8):
            truth = rng.integers(0, 4, (24, 24), dtype=np.uint8)
            pred = np.where(rng.random(truth.shape) < skill, truth, 0).astype(np.uint8)
            protocol.update(masker, pred, truth, meta={"id": f"roi{i}"})
    return protocol


def test_write_report_writes_tables_pages_and_plots(cloudsen12, tmp_path: Path) -> None:
    quicklook = tmp_path / "worst.png"
    quicklook.write_bytes(PNG_MAGIC + b"fake")
    files = write_report(
        cloudsen12, tmp_path / "out", failures={"fmask roi3 (BOA 0.41)": quicklook}
    )
    for path in (
        files.per_image_csv,
        files.summary_csv,
        files.markdown,
        files.html,
        *files.figures,
    ):
        assert path.is_file()
    for figure in files.figures[:2]:
        assert figure.read_bytes().startswith(PNG_MAGIC)
    per_image = read_csv(files.per_image_csv)
    assert len(per_image) == 16 and per_image[0]["n_0_0"].isdigit()
    summary = read_csv(files.summary_csv)
    assert [(r["masker"], r["task"]) for r in summary][:2] == [
        ("fmask", "cloud"),
        ("fmask", "shadow"),
    ]
    markdown = files.markdown.read_text()
    assert "| masker | task |" in markdown and "0.920" in markdown  # published UnetMobV2 value
    assert "](figures/scores.png)" in markdown and "fmask roi3" in markdown
    page = files.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and '<img src="figures/confusion_0.png"' in page
    # a grid that wraps (one small figure per masker), the PA/UA bins, a sortable image table
    assert '<div class="grid">' in page and "flex-wrap:wrap" in page
    assert (files.folder / "figures" / "confusion_1.png").is_file()
    assert '<img src="figures/bins.png"' in page and "sortTable(this,0)" in page
    assert page.count("<tr>") >= 16 + 2  # every image has a row
    assert not list(files.folder.rglob("*.part"))  # atomic writes leave no temporaries


def test_report_is_reproducible_from_the_csv_alone(cloudsen12, tmp_path: Path) -> None:
    first = write_report(cloudsen12, tmp_path / "first")
    again = build_report(first.per_image_csv, tmp_path / "again")
    assert again.summary_csv.read_text() == first.summary_csv.read_text()
    assert again.per_image_csv.read_text() == first.per_image_csv.read_text()
    assert again.markdown.read_text() == first.markdown.read_text()
    assert (again.folder / "figures" / "scores.png").is_file()


def test_terminal_summary_shows_nan_as_dash(cloudsen12) -> None:
    text = render_summary_text(cloudsen12)
    assert "fmask" in text and "s2cloudless" in text and "median_boa" in text
    assert "Published" in text and "UnetMobV2" in text
    assert format_value(float("nan")) == "-" and format_value(0.12345) == "0.123"


def test_csv_writes_nan_as_empty_cells(tmp_path: Path) -> None:
    path = write_csv([{"a": 1.5, "b": float("nan")}, {"a": 2, "c": "x"}], tmp_path / "t.csv")
    assert path.read_text().splitlines() == ["a,b,c", "1.5,,", "2,,x"]


def test_report_errors_tell_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="not found"):
        build_report(tmp_path / "missing.csv", tmp_path / "out")
    with pytest.raises(BenchmarkError, match="update"):
        write_report(get_protocol("cmc"), tmp_path / "out")
    with pytest.raises(OutputError, match="does not exist"):
        write_csv([{"a": 1}], tmp_path / "no" / "such" / "t.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("protocol,masker\n")
    with pytest.raises(BenchmarkError, match="empty"):
        build_report(empty, tmp_path / "out")


def test_importing_the_benchmark_does_not_import_matplotlib() -> None:
    code = "import sys, s2clouds.benchmark.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
