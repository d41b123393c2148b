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
    fig = _figure(figsize=(3.2 * len(scores) + 1.5, 0.45 * len(maskers) + 2), layout="constrained")
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


def plot_confusion_grid(protocol: Protocol, folder: str | Path) -> list[Path]:
    """One small confusion heat map per masker (``confusion_<n>.png``), shown as a grid that
    wraps on the page instead of one very wide figure."""
    names = protocol.class_names
    size = 1.6 + 0.55 * len(names)
    paths = []
    for number, masker in enumerate(protocol.maskers):
        fig = _figure(figsize=(size + 0.8, size + 0.6), layout="constrained")
        ax = fig.subplots()
        counts = protocol.confusion(masker).counts
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        for (i, j), share in np.ndenumerate(shares):
            colour = "white" if share > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{share:.2f}\n{counts[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("prediction")
        ax.set_ylabel("truth")
        ax.set_title(_short(masker), fontsize=9)
        paths.append(_save_figure(fig, Path(folder) / f"confusion_{number}.png"))
    return paths


def _short(text: str, width: int = 34) -> str:
    """``text`` cut to ``width`` characters from the left (file paths keep their name)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


#: bins of the PA / UA shares in summary rows (``pa_low`` ...), lowest first
BINS = ("low", "mid", "high")
_BIN_COLOURS = ("#d7301f", "#fdae6b", "#31a354")


def has_bins(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether summary rows carry PA / UA bin shares (the CloudSEN12 protocol's)."""
    return bool(rows) and all(f"pa_{b}" in rows[0] for b in BINS)


def plot_bins(
    protocol: Protocol, path: str | Path, rows: Sequence[Mapping[str, Any]] | None = None
) -> Path:
    """Stacked bars of the share of images with PA and UA low (< 0.1), mid and high (> 0.9),
    one panel per task, a PA and a UA bar per masker (``rows``: the protocol's summary rows,
    when already computed)."""
    rows = protocol.summary_rows() if rows is None else rows
    tasks = list(dict.fromkeys(str(r["task"]) for r in rows))
    maskers = protocol.maskers
    fig = _figure(figsize=(3.6 * len(tasks) + 2.5, 0.55 * len(maskers) + 1.8), layout="constrained")
    axes = fig.subplots(
        1,
        len(tasks),
        squeeze=False,
        sharey=True,
    )
    labels = [f"{_short(m, 24)} {k}" for m in maskers for k in ("PA", "UA")]
    for ax, task in zip(axes[0], tasks, strict=True):
        by_masker = {r["masker"]: r for r in rows if r["task"] == task}
        left = np.zeros(len(labels))
        for b, colour in zip(BINS, _BIN_COLOURS, strict=True):
            widths = np.array(
                [
                    float(by_masker[m][f"{k}_{b}"]) if m in by_masker else np.nan
                    for m in maskers
                    for k in ("pa", "ua")
                ]
            )
            widths = np.nan_to_num(widths)
            ax.barh(range(len(labels)), widths, left=left, color=colour, label=b)
            left += widths
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(task)
        ax.set_xlabel("share of images")
    axes[0][-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(f"{protocol.title}: PA / UA bins (low < 0.1, high > 0.9)")
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
        elif kind == "grid":
            parts += [f"![{caption}]({src})" for caption, src in content[0]]
        elif kind == "sortable":
            parts.append(f"Per-image scores: see {PER_IMAGE_CSV} (sortable in report.html).")
    return "\n\n".join(parts) + "\n"


def _figure_html(caption: str, src: str) -> str:
    caption, src = html.escape(caption), html.escape(src)
    return f'<figure><img src="{src}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'


def _sortable_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A table whose column headers sort it (numbers numerically, '-' last)."""
    columns = _columns(rows)
    head = "".join(
        f'<th onclick="sortTable(this,{i})" title="sort">{html.escape(c)} ⇅</th>'
        for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>" + "".join(_sortable_cell(c, r.get(c)) for c in columns) + "</tr>" for r in rows
    )
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _sortable_cell(column: str, value: Any) -> str:
    """A cell: text, or a linked thumbnail in :data:`THUMBNAIL_COLUMN` (sorted as its path)."""
    if column == THUMBNAIL_COLUMN and value:
        src = html.escape(str(value))
        return f'<td><a href="{src}"><img class="thumb" src="{src}" alt="{src}"></a></td>'
    return f"<td>{html.escape(format_value(value))}</td>"


#: sorts a table.sortable by the clicked column; a second click reverses
_SORT_SCRIPT = """
function sortTable(th, col) {
  const body = th.closest('table').tBodies[0];
  const rows = Array.from(body.rows);
  const up = th.dataset.dir !== 'up';
  th.dataset.dir = up ? 'up' : 'down';
  const key = r => { const t = r.cells[col].textContent; const n = parseFloat(t);
    return t === '-' ? null : (isNaN(n) ? t : n); };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    if (x === null) return 1; if (y === null) return -1;
    const c = (typeof x === 'number' && typeof y === 'number')
      ? x - y : String(x).localeCompare(String(y));
    return up ? c : -c; });
  rows.forEach(r => body.appendChild(r));
}
"""


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
            parts.append(_figure_html(str(content[0]), str(content[1])))
        elif kind == "grid":
            figures = "".join(_figure_html(str(c), str(src)) for c, src in content[0])
            parts.append(f'<div class="grid">{figures}</div>')
        elif kind == "sortable":
            parts.append(f'<div class="scroll">{_sortable_table(content[0])}</div>')
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 12px;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 6px}td{text-align:right}th{background:#f3f3f3;position:sticky;top:0}"
        "img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:12px}"
        ".grid figure{margin:0;flex:0 1 360px}.grid figcaption{font-size:12px}"
        ".scroll{max-height:480px;overflow:auto;max-width:100%}"
        "table.sortable th{cursor:pointer}img.thumb{height:64px;display:block}"
        "div.scroll table{width:100%}"
        "body>table{display:block;overflow-x:auto}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style><script>{_SORT_SCRIPT}</script></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
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
    thumbnails: Mapping[tuple[str, str], str] | None = None,
) -> ReportFiles:
    """Write ``per_image.csv``, ``summary.csv``, ``report.md``, ``report.html`` and the plots
    under ``out_dir/figures``. ``failures`` maps a caption to a quicklook PNG (e.g. a masker's
    worst images) that is copied in and shown on the pages; ``thumbnails`` maps ``(masker,
    image id)`` to one of those captions, shown in that image's row of the per-image table."""
    if not protocol.maskers:
        raise BenchmarkError("the protocol holds no results; call protocol.update() first")
    folder = _make_folder(Path(out_dir))
    figures = _make_folder(folder / FIGURES)
    rows = protocol.results()
    per_image = write_csv(rows, folder / PER_IMAGE_CSV)
    summary_rows = protocol.summary_rows()
    summary = write_csv(summary_rows, folder / SUMMARY_CSV)
    plots = [
        plot_score_distributions(protocol, figures / "scores.png"),
        *plot_confusion_grid(protocol, figures),
    ]
    if has_bins(summary_rows):
        plots.append(plot_bins(protocol, figures / "bins.png", summary_rows))
    examples = (
        _copy_failures(failures or {}, _make_folder(figures / "failures")) if failures else []
    )
    copied = {caption: path for caption, path in examples}
    thumbs = {
        key: copied[caption].relative_to(folder).as_posix()
        for key, caption in (thumbnails or {}).items()
        if caption in copied
    }
    blocks = _page_blocks(protocol, summary_rows, folder, plots, examples, thumbs)
    page_title = title or f"s2clouds benchmark: {protocol.title}"
    markdown = _write_text(folder / "report.md", _render_markdown(page_title, blocks))
    page = _write_text(folder / "report.html", _render_html(page_title, blocks))
    return ReportFiles(
        folder, per_image, summary, markdown, page, [*plots, *(p for _, p in examples)]
    )


def _page_blocks(
    protocol: Protocol,
    summary_rows: Sequence[Mapping[str, Any]],
    folder: Path,
    plots: list[Path],
    examples: list[tuple[str, Path]],
    thumbnails: Mapping[tuple[str, str], str] | None = None,
) -> list[Block]:
    maskers = ", ".join(f"{m} ({len(protocol.image_ids(m))} images)" for m in protocol.maskers)
    blocks: list[Block] = [
        ("p", f"Protocol {protocol.name}: {protocol.source}. Maskers: {maskers}."),
        ("h2", "Summary"),
        ("table", _display_rows(summary_rows)),
        ("p", NAN_RULES),
    ]
    if protocol.reference_rows():
        blocks += [
            ("h2", "Published values"),
            ("p", protocol.source),
            ("table", protocol.reference_rows()),
        ]

    def rel(path: Path) -> str:
        return path.relative_to(folder).as_posix()

    confusion = [p for p in plots if p.name.startswith("confusion_")]
    bins = [p for p in plots if p.name == "bins.png"]
    blocks += [
        ("h2", "Per-image scores"),
        ("img", "per-image score distributions", rel(plots[0])),
    ]
    if bins:
        blocks += [("h2", "PA / UA bins"), ("img", "share of images per PA / UA bin", rel(bins[0]))]
    blocks += [
        ("h2", "Confusion matrices"),
        ("p", "Pooled over every image; rows are the truth, cells the share of the row."),
        ("grid", [(m, rel(p)) for m, p in zip(protocol.maskers, confusion, strict=True)]),
    ]
    if examples:
        blocks.append(("h2", "Worst images"))
        blocks.append(("grid", [(caption, rel(path)) for caption, path in examples]))
    blocks += [
        ("h2", "Every image"),
        ("p", "Click a column header to sort (again to reverse); '-' is undefined, last."),
        ("sortable", _image_rows(protocol, thumbnails or {})),
    ]
    blocks.append(
        ("p", f"Rebuild with build_report('{PER_IMAGE_CSV}', out_dir) from the per-image CSV.")
    )
    return blocks


#: column of the page's per-image table holding a quicklook (a relative image path)
THUMBNAIL_COLUMN = "quicklook"


def _image_rows(protocol: Protocol, thumbnails: Mapping[tuple[str, str], str]) -> list[Row]:
    """Per-image rows without the confusion counts and constant columns, for the page; the
    worst images carry their quicklook in :data:`THUMBNAIL_COLUMN`."""
    rows = []
    for row in protocol.results():
        kept: Row = {
            k: v
            for k, v in row.items()
            if not re.match(r"^n_\d+_\d+$", k) and k not in {"protocol", "scheme", "tasks"}
        }
        if thumbnails:
            kept[THUMBNAIL_COLUMN] = thumbnails.get((str(row["masker"]), str(row["image_id"])))
        rows.append(kept)
    return rows


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
