"""Benchmark reports: a terminal table, CSV files, and Markdown + HTML pages with plots.

Everything is derived from a protocol's per-image rows, which carry each image's confusion
counts, so :func:`build_report` re-creates the whole report (tables and plots) from the
per-image CSV alone. Files are written atomically (temporary file, then ``os.replace``).
matplotlib is imported only when plots are drawn, with the Agg backend.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds.benchmark.confusion import BenchmarkError
from s2clouds.benchmark.protocols import Protocol, protocol_from_rows
from s2clouds.errors import OutputError
from s2clouds.io.write import atomic_path, check_writable
from s2clouds.viz import save_figure

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Row = dict[str, Any]
PER_IMAGE_CSV = "per_image.csv"
SUMMARY_CSV = "summary.csv"
FIGURES = "figures"
_DECIMALS = 3

NAN_RULES = (
    "Undefined metrics (0/0) are NaN, shown as '-': PA is undefined for an image without "
    "positive truth pixels, UA where the masker predicted no positives, BOA when either of its "
    "two rates is undefined. Medians, means, macro averages and bin shares use only the "
    "defined values; n_* columns count them."
)


# --------------------------------------------------------------------------- formatting
def format_value(value: Any) -> str:
    """Cell text: floats with 3 decimals, NaN and None as '-', everything else as str."""
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        return "-" if math.isnan(value) else f"{value:.{_DECIMALS}f}"
    return str(value)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Union of the rows' keys in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    return value


# --------------------------------------------------------------------------- terminal
def summary_table(rows: Sequence[Mapping[str, Any]], title: str = "") -> Table:
    """A rich table of ``rows`` (one column per key)."""
    from rich.table import Table

    table = Table(title=title or None)
    columns = _columns(rows)
    for column in columns:
        table.add_column(column, justify="left" if column in {"masker", "task"} else "right")
    for row in rows:
        table.add_row(*(format_value(row.get(c)) for c in columns))
    return table


def print_summary(protocol: Protocol, console: Console | None = None) -> None:
    """Print the protocol's summary (and published values, where it has them)."""
    from rich.console import Console

    out = console or Console()
    out.print(summary_table(_display_rows(protocol.summary_rows()), protocol.title))
    if protocol.reference_rows():
        out.print(summary_table(protocol.reference_rows(), f"Published: {protocol.source}"))


def _display_rows(rows: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Summary rows without the constant ``protocol`` column."""
    return [{k: v for k, v in row.items() if k != "protocol"} for row in rows]


# --------------------------------------------------------------------------- CSV
def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` as CSV (NaN and None as empty cells), atomically; returns the path."""
    target = Path(path)
    check_writable(target)
    columns = _columns(rows)
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
    return target


def read_csv(path: str | Path) -> list[Row]:
    """Rows of a CSV written by :func:`write_csv` (cells are strings; empty = undefined)."""
    source = Path(path)
    if not source.is_file():
        raise BenchmarkError(
            f"per-image CSV {source} not found; write it with write_report() or "
            "'s2clouds benchmark' first"
        )
    try:
        with open(source, newline="", encoding="utf-8") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BenchmarkError(
            f"per-image CSV {source} is not a readable UTF-8 CSV ({exc}); write it again with "
            "'s2clouds benchmark'"
        ) from exc


# --------------------------------------------------------------------------- plots
def _figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` built directly (no pyplot, no global backend)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _horizontal() -> dict[str, Any]:
    """Keyword for horizontal box plots: ``orientation`` since matplotlib 3.10, ``vert`` before."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _save_figure(figure: Any, path: Path) -> Path:
    return save_figure(figure, path, dpi=110, tight=True)


def _score_values(
    rows: Sequence[Row], maskers: Sequence[str], column: str
) -> dict[str, np.ndarray]:
    """Per masker: the defined per-image values of ``column``."""
    values: dict[str, list[float]] = {m: [] for m in maskers}
    for row in rows:
        value = row.get(column)
        if isinstance(value, float) and not math.isnan(value):
            values[row["masker"]].append(value)
    return {m: np.asarray(v, dtype=np.float64) for m, v in values.items()}


def plot_score_distributions(protocol: Protocol, path: str | Path) -> Path:
    """Box plots of the per-image scores (e.g. BOA per task) per masker, one panel per score;
    NaN images are left out and each masker is labelled with its image count per panel."""
    scores = protocol.per_image_scores
    maskers = protocol.maskers
    fig = _figure(
        figsize=(3.2 * len(scores) + 1.5, 0.45 * len(maskers) + 2), layout="constrained"
    )
    axes = fig.subplots(1, len(scores), squeeze=False)
    rows = protocol.results()
    for ax, column in zip(axes[0], scores, strict=True):
        values = _score_values(rows, maskers, column)
        data = [values[m] if values[m].size else np.array([np.nan]) for m in maskers]
        ax.boxplot(data, showfliers=True, **_horizontal())
        ax.set_yticks(range(1, len(maskers) + 1), [f"{m} (n={values[m].size})" for m in maskers])
        ax.set_xlim(0, 1)
        ax.set_title(column)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{protocol.title}: per-image scores")
    return _save_figure(fig, Path(path))


def plot_confusion_matrices(protocol: Protocol, path: str | Path) -> Path:
    """One heat map per masker of the pooled confusion matrix, normalised by truth rows
    (cells give the share of each truth class, and the pixel count)."""
    maskers = protocol.maskers
    names = protocol.class_names
    size = 1.5 + 0.6 * len(names)
    fig = _figure(figsize=(size * len(maskers) + 1.5, size + 1), layout="constrained")
    axes = fig.subplots(1, len(maskers), squeeze=False)
    for index, (ax, masker) in enumerate(zip(axes[0], maskers, strict=True)):
        counts = protocol.confusion(masker).counts
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        for (i, j), share in np.ndenumerate(shares):
            colour = "white" if share > 0.5 else "black"
            text = f"{share:.2f}\n{counts[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names if index == 0 else [], fontsize=8)
        ax.set_xlabel("prediction")
        if index == 0:
            ax.set_ylabel("truth")
        ax.set_title(masker)
    fig.suptitle(f"{protocol.title}: confusion (rows = truth)")
    return _save_figure(fig, Path(path))


# --------------------------------------------------------------------------- pages
@dataclass
class ReportFiles:
    """Paths written by :func:`write_report`."""

    folder: Path
    per_image_csv: Path
    summary_csv: Path
    markdown: Path
    html: Path
    figures: list[Path] = field(default_factory=list)


def _markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_value(r.get(c)))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


#: a page is a list of blocks: ("h2", text), ("p", text), ("table", rows), ("img", caption, path)
Block = tuple[Any, ...]


def _render_markdown(title: str, blocks: Sequence[Block]) -> str:
    parts = [f"# {title}"]
    for kind, *content in blocks:
        if kind == "h2":
            parts.append(f"## {content[0]}")
        elif kind == "p":
            parts.append(str(content[0]))
        elif kind == "table":
            parts.append(_markdown_table(content[0]))
        elif kind == "img":
            parts.append(f"![{content[0]}]({content[1]})")
    return "\n\n".join(parts) + "\n"


def _render_html(title: str, blocks: Sequence[Block]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for kind, *content in blocks:
        if kind == "h2":
            parts.append(f"<h2>{html.escape(str(content[0]))}</h2>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(str(content[0]))}</p>")
        elif kind == "table":
            parts.append(_html_table(content[0]))
        elif kind == "img":
            caption, src = html.escape(str(content[0])), html.escape(str(content[1]))
            parts.append(
                f'<figure><img src="{src}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
            )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
        "td{text-align:right}img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _safe_name(caption: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", caption).strip("_") or "example"


def _copy_failures(failures: Mapping[str, str | Path], folder: Path) -> list[tuple[str, Path]]:
    """Copy the caller's quicklook PNGs into ``folder``; returns (caption, copied path)."""
    copied: list[tuple[str, Path]] = []
    for index, (caption, source) in enumerate(failures.items()):
        src = Path(source)
        if not src.is_file():
            raise BenchmarkError(f"failure quicklook {src} not found; pass existing PNG files")
        target = folder / f"{index:03d}_{_safe_name(caption)}{src.suffix or '.png'}"
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
        copied.append((caption, target))
    return copied


def _make_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create report folder {folder} ({exc}); choose another path"
        ) from exc
    return folder


def write_report(
    protocol: Protocol,
    out_dir: str | Path,
    *,
    failures: Mapping[str, str | Path] | None = None,
    title: str | None = None,
) -> ReportFiles:
    """Write ``per_image.csv``, ``summary.csv``, ``report.md``, ``report.html`` and the plots
    under ``out_dir/figures``. ``failures`` maps a caption to a quicklook PNG (e.g. a masker's
    worst images) that is copied in and shown on the pages."""
    if not protocol.maskers:
        raise BenchmarkError("the protocol holds no results; call protocol.update() first")
    folder = _make_folder(Path(out_dir))
    figures = _make_folder(folder / FIGURES)
    rows = protocol.results()
    per_image = write_csv(rows, folder / PER_IMAGE_CSV)
    summary = write_csv(protocol.summary_rows(), folder / SUMMARY_CSV)
    plots = [
        plot_score_distributions(protocol, figures / "scores.png"),
        plot_confusion_matrices(protocol, figures / "confusion.png"),
    ]
    examples = (
        _copy_failures(failures or {}, _make_folder(figures / "failures")) if failures else []
    )
    blocks = _page_blocks(protocol, folder, plots, examples)
    page_title = title or f"s2clouds benchmark: {protocol.title}"
    markdown = _write_text(folder / "report.md", _render_markdown(page_title, blocks))
    page = _write_text(folder / "report.html", _render_html(page_title, blocks))
    return ReportFiles(
        folder, per_image, summary, markdown, page, [*plots, *(p for _, p in examples)]
    )


def _page_blocks(
    protocol: Protocol, folder: Path, plots: list[Path], examples: list[tuple[str, Path]]
) -> list[Block]:
    maskers = ", ".join(f"{m} ({len(protocol.image_ids(m))} images)" for m in protocol.maskers)
    blocks: list[Block] = [
        ("p", f"Protocol {protocol.name}: {protocol.source}. Maskers: {maskers}."),
        ("h2", "Summary"),
        ("table", _display_rows(protocol.summary_rows())),
        ("p", NAN_RULES),
    ]
    if protocol.reference_rows():
        blocks += [
            ("h2", "Published values"),
            ("p", protocol.source),
            ("table", protocol.reference_rows()),
        ]
    blocks += [
        ("h2", "Per-image scores"),
        ("img", "per-image score distributions", plots[0].relative_to(folder).as_posix()),
    ]
    blocks += [
        ("h2", "Confusion matrices"),
        ("img", "pooled confusion matrices", plots[1].relative_to(folder).as_posix()),
    ]
    if examples:
        blocks.append(("h2", "Failure examples"))
        blocks += [
            ("img", caption, path.relative_to(folder).as_posix()) for caption, path in examples
        ]
    blocks.append(
        ("p", f"Rebuild with build_report('{PER_IMAGE_CSV}', out_dir) from the per-image CSV.")
    )
    return blocks


def build_report(
    csv_path: str | Path,
    out_dir: str | Path,
    *,
    failures: Mapping[str, str | Path] | None = None,
    title: str | None = None,
) -> ReportFiles:
    """Re-create the full report (tables, plots, pages) from a per-image CSV alone."""
    protocol = protocol_from_rows(read_csv(csv_path))
    return write_report(protocol, out_dir, failures=failures, title=title)


def render_summary_text(protocol: Protocol, width: int = 160) -> str:
    """The terminal summary as plain text (for logs and tests)."""
    from rich.console import Console

    buffer = io.StringIO()
    print_summary(protocol, Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue()
