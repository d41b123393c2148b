"""Acquisition times and dates from metadata and names, and the solar position from time
and place (NOAA solar calculator formulae, ~0.1 degree)."""

from __future__ import annotations

import datetime as dt
import math
import re
from datetime import UTC, datetime

from s2clouds.io.grid import Grid


def parse_timestamp(text: str) -> datetime | None:
    """Parse ``2020-04-24T08:20:39Z``, ``2020:04:24 08:20:39`` (TIFF) and similar, as UTC."""
    cleaned = text.strip().replace("Z", "")
    for fmt in (
        "%Y-%m-%dT%H:%M:%S.%f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y:%m:%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ):
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def grid_centre_lonlat(grid: Grid) -> tuple[float, float]:
    """Longitude and latitude (degrees) of the grid centre."""
    from rasterio.warp import transform

    x, y = grid.transform @ (grid.width / 2, grid.height / 2)
    lons, lats = transform(grid.crs, "EPSG:4326", [x], [y])
    return float(lons[0]), float(lats[0])


def solar_position(when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Solar zenith and azimuth (degrees, azimuth clockwise from north) at ``when`` (UTC)."""
    day_of_year = when.timetuple().tm_yday
    hours = when.hour + when.minute / 60 + when.second / 3600
    gamma = 2 * math.pi / 365 * (day_of_year - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_minutes = hours * 60 + eqtime + 4 * lon
    hour_angle = math.radians(true_solar_minutes / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(
        hour_angle
    )
    zenith = math.acos(max(-1.0, min(1.0, cos_zenith)))
    azimuth = (
        math.degrees(
            math.atan2(
                math.sin(hour_angle),
                math.cos(hour_angle) * math.sin(phi) - math.tan(decl) * math.cos(phi),
            )
        )
        + 180.0
    )
    return math.degrees(zenith), azimuth % 360.0


#: dates in file or product names: 2018-01-06, 20180106, 20180106T101401
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:T\d{6})?(?!\d)"),
)


def parse_date(text: str) -> dt.date | None:
    """The first date in ``text`` (ISO timestamps, ``YYYY-MM-DD``, ``YYYYMMDD``), or None."""
    for pattern in _DATE_PATTERNS:
        for found in pattern.finditer(text):
            try:
                return dt.date(int(found[1]), int(found[2]), int(found[3]))
            except ValueError:
                continue
    return None
