"""``s2clouds search``: find acquisitions in a STAC API and write one item JSON each."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from s2clouds.cli.options import quiet_option
from s2clouds.io.search import DEFAULT_MAX_ITEMS

if TYPE_CHECKING:
    from s2clouds.io.search import SearchResult


def _bbox(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from s2clouds.errors import SearchError
    from s2clouds.io.search import parse_bbox

    if value is None:
        return None
    try:
        return parse_bbox(value)
    except SearchError as exc:
        raise click.BadParameter(str(exc)) from exc


def _datetime(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from s2clouds.errors import SearchError
    from s2clouds.io.search import check_datetime

    if value is None:
        return None
    try:
        return check_datetime(value)
    except SearchError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("search")
@click.option(
    "--stac",
    "url",
    required=True,
    metavar="URL",
    help="STAC API landing page, e.g. https://earth-search.aws.element84.com/v1 or "
    "https://planetarycomputer.microsoft.com/api/stac/v1.",
)
@click.option(
    "--collection",
    "collections",
    multiple=True,
    default=("sentinel-2-l2a",),
    show_default=True,
    help="Collection id; repeat for several.",
)
@click.option(
    "--bbox",
    callback=_bbox,
    default=None,
    metavar="W,S,E,N",
    help="Area in degrees (WGS 84 longitude/latitude), e.g. 11.0,46.0,11.5,46.5.",
)
@click.option(
    "--datetime",
    "when",
    callback=_datetime,
    default=None,
    metavar="A/B",
    help="Date or interval (RFC 3339; '..' for an open end), e.g. 2024-05-01/2024-06-30.",
)
@click.option(
    "--max-cloud",
    type=click.FloatRange(0, 100),
    default=None,
    help="Keep items whose eo:cloud_cover is at most this percentage (items that do not "
    "state it are dropped).",
)
@click.option(
    "--max-items",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ITEMS,
    show_default=True,
    help="Most items fetched.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the item JSONs (<item id>.json; created; existing items replaced).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds each request to the API may take.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Retries of a request that failed to connect or got HTTP 429/502/503/504.",
)
@quiet_option
def search(
    url: str,
    collections: tuple[str, ...],
    bbox: tuple[float, float, float, float] | None,
    when: str | None,
    max_cloud: float | None,
    max_items: int,
    output: Path,
    timeout: float,
    retries: int,
    quiet: bool,
) -> None:
    """Find Sentinel-2 acquisitions in a STAC API; write one item JSON per acquisition.

    The items keep the API's (unsigned) asset URLs: 's2clouds predict ITEM.json' reads
    them with HTTP range requests (Planetary Computer: add --sign planetary-computer).
    Prints id, datetime and cloud cover of each item. Finding nothing is not an error: a
    message says so and the exit code is 0.
    """
    from s2clouds.io.search import SearchQuery, search_items, write_items

    query = SearchQuery(
        url=url,
        collections=tuple(collections),
        bbox=bbox,
        datetime=when,
        max_cloud=max_cloud,
        max_items=max_items,
        timeout=timeout,
        retries=retries,
    )
    result = search_items(query)
    if not result.items:
        click.echo(
            f"no items in {', '.join(collections)} match (bbox {bbox}, datetime {when}, "
            f"max cloud {max_cloud}); nothing written. Widen --bbox or --datetime, or raise "
            "--max-cloud"
        )
        return
    paths = write_items(result.items, output)
    if not quiet:
        _print_table(result)
    click.echo(f"wrote {len(paths)} item(s) to {output}{_notes(result, max_items)}")


def _print_table(result: SearchResult) -> None:
    from s2clouds.io.search import cloud_cover
    from s2clouds.io.stac import item_properties

    rows = [
        (
            str(item.get("id")),
            str(item_properties(item).get("datetime") or "-"),
            "-" if (c := cloud_cover(item)) is None else f"{c:.1f}",
        )
        for item in result.items
    ]
    header = ("id", "datetime", "cloud %")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")


def _notes(result: SearchResult, max_items: int) -> str:
    notes = []
    if result.duplicates:
        notes.append(f"{result.duplicates} repeated acquisition(s) reduced to the newest")
    if result.cloud_filter == "client" and result.dropped_cloud:
        notes.append(
            f"{result.dropped_cloud} over --max-cloud dropped here (the API cannot filter)"
        )
    if result.truncated:
        notes.append(f"stopped at --max-items {max_items}; more items match")
    return f" ({'; '.join(notes)})" if notes else ""
