"""Sun angles of a scene: :class:`SunAngles`, checked when made, from metadata values
(:func:`sun_angles`) or from raster tags (:func:`sun_angles_from_tags`: angle tags, else the
solar position at the acquisition time, see :mod:`s2clouds.io.solar`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s2clouds.errors import SceneFormatError
from s2clouds.io.grid import Grid


@dataclass(frozen=True)
class SunAngles:
    """Mean solar and viewing angles of a scene, in degrees (azimuth clockwise from north)."""

    sun_zenith: float
    sun_azimuth: float
    view_zenith: float | None = None
    view_azimuth: float | None = None
    source: str = "metadata"

    def __post_init__(self) -> None:
        """Refuse angles that no Sentinel-2 acquisition has (the sun below the horizon, NaN)."""
        limits = {
            "sun zenith": (self.sun_zenith, 0, 90),
            "sun azimuth": (self.sun_azimuth, -360, 360),
        }
        for name, (value, low, high) in limits.items():
            if not low <= value <= high:  # also refuses NaN
                raise SceneFormatError(
                    f"{name} angle {value!r} from {self.source} is outside {low} to {high} "
                    "degrees; fix or remove the angles in the metadata"
                )


def sun_angles(zenith: Any, azimuth: Any, source: str) -> SunAngles:
    """:class:`SunAngles` from metadata values (numbers or text); :class:`SceneFormatError`
    naming ``source`` when they are not numbers, or not possible angles."""
    try:
        return SunAngles(float(zenith), float(azimuth), source=source)
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(
            f"sun angles from {source} are {zenith!r} and {azimuth!r}, not numbers; fix or "
            "remove them in the metadata"
        ) from exc


def sun_angles_from_tags(
    tags: dict[str, str], grid: Grid, *, where: str = "raster tags"
) -> SunAngles | None:
    """Sun angles from raster tags: explicit angle tags, else acquisition time + location.

    Recognised tags: ``MEAN_SOLAR_ZENITH_ANGLE``/``MEAN_SOLAR_AZIMUTH_ANGLE`` (as in Earth
    Engine exports) or ``SUN_ZENITH``/``SUN_AZIMUTH``; otherwise ``TIFFTAG_DATETIME`` or
    ``ACQUISITION_DATE`` with the scene centre gives the solar position (NOAA formulae).
    ``tags`` are the raster's dataset tags with upper-case keys (see
    :func:`~s2clouds.io.headers.raster_info`); ``where`` names them in errors (angles that
    are not numbers, or impossible).
    """
    for zen_key, az_key in (
        ("MEAN_SOLAR_ZENITH_ANGLE", "MEAN_SOLAR_AZIMUTH_ANGLE"),
        ("SUN_ZENITH", "SUN_AZIMUTH"),
    ):
        if zen_key in tags and az_key in tags:
            return sun_angles(tags[zen_key], tags[az_key], source=where)
    stamp = tags.get("ACQUISITION_DATE") or tags.get("TIFFTAG_DATETIME")
    if stamp is None or grid.crs is None:
        return None
    from s2clouds.io.solar import grid_centre_lonlat, parse_timestamp, solar_position

    when = parse_timestamp(stamp)
    if when is None:
        return None
    lon, lat = grid_centre_lonlat(grid)
    zenith, azimuth = solar_position(when, lon, lat)
    return SunAngles(zenith, azimuth, source=f"solar position at {when.isoformat()}")
