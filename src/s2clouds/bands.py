"""The Sentinel-2 MSI band catalogue: names, aliases, wavelengths and native resolutions.

Canonical names are the zero-padded product names (``B01`` .. ``B12``, ``B8A``) plus the L2A
extra layers ``AOT``, ``WVP``, ``SCL`` and ``TCI``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from s2clouds.errors import BandError


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 band.

    Wavelengths are central wavelengths in nanometres for S2A and S2B; ``resolution`` is the
    native ground sampling distance in metres.
    """

    name: str
    resolution: int
    wavelength_s2a: float | None
    wavelength_s2b: float | None
    description: str
    aliases: tuple[str, ...] = ()
    spectral: bool = True


MSI_BANDS: tuple[Band, ...] = (
    Band("B01", 60, 442.7, 442.3, "coastal aerosol", ("coastal", "aerosol")),
    Band("B02", 10, 492.4, 492.1, "blue", ("blue",)),
    Band("B03", 10, 559.8, 559.0, "green", ("green",)),
    Band("B04", 10, 664.6, 665.0, "red", ("red",)),
    Band("B05", 20, 704.1, 703.8, "red edge 1", ("rededge1", "rededge")),
    Band("B06", 20, 740.5, 739.1, "red edge 2", ("rededge2",)),
    Band("B07", 20, 782.8, 779.7, "red edge 3", ("rededge3",)),
    Band("B08", 10, 832.8, 833.0, "NIR", ("nir",)),
    Band("B8A", 20, 864.7, 864.0, "narrow NIR", ("nir08", "nir08a", "narrownir", "rededge4")),
    Band("B09", 60, 945.1, 943.2, "water vapour", ("watervapor", "wv", "nir09")),
    Band("B10", 60, 1373.5, 1376.9, "cirrus (L1C only)", ("cirrus", "swir13")),
    Band("B11", 20, 1613.7, 1610.4, "SWIR 1", ("swir16", "swir1")),
    Band("B12", 20, 2202.4, 2185.7, "SWIR 2", ("swir22", "swir2")),
)

L2A_EXTRA_BANDS: tuple[Band, ...] = (
    Band("AOT", 10, None, None, "aerosol optical thickness (x0.001)", ("aot",), False),
    Band("WVP", 10, None, None, "water vapour (x0.001 cm)", ("wvp",), False),
    Band("SCL", 20, None, None, "Sen2Cor scene classification", ("scl",), False),
    Band("TCI", 10, None, None, "true colour image (8-bit RGB)", ("tci", "visual"), False),
)

ALL_BANDS: tuple[Band, ...] = MSI_BANDS + L2A_EXTRA_BANDS
MSI_BAND_NAMES: tuple[str, ...] = tuple(b.name for b in MSI_BANDS)
L1C_BANDS: tuple[str, ...] = MSI_BAND_NAMES
L2A_BANDS: tuple[str, ...] = tuple(b for b in MSI_BAND_NAMES if b != "B10")
RGBN_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: the common 10-band stack of analysis-ready data: the 10 and 20 m bands (no B01, B09, B10)
SWIR10_BANDS: tuple[str, ...] = (
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B11",
    "B12",
)
#: blue, green, red, NIR and both SWIR bands (Landsat-like stacks, ukis-csmask's 6 bands)
SWIR6_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")

_BY_NAME = {b.name: b for b in ALL_BANDS}
_ALIASES: dict[str, str] = {}
for _b in ALL_BANDS:
    _ALIASES[_b.name.lower()] = _b.name
    for _a in _b.aliases:
        _ALIASES[_a.lower()] = _b.name

_NUMBERED = re.compile(r"^b0*(\d{1,2})(a?)$")


def canonical_band_name(name: str) -> str:
    """Return the canonical name of a band given any accepted spelling.

    Accepts ``B4``, ``B04``, ``b04``, ``B8A``, ``b8a``, ``red``, ``nir``, ``swir16`` and so on.
    Raises :class:`BandError` for anything else.
    """
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if key in _ALIASES:
        return _ALIASES[key]
    m = _NUMBERED.match(key)
    if m:
        number, suffix = int(m.group(1)), m.group(2)
        candidate = "B8A" if (number == 8 and suffix) else f"B{number:02d}"
        if candidate in _BY_NAME and (not suffix or candidate == "B8A"):
            return candidate
    raise BandError(
        f"unknown Sentinel-2 band {name!r}; use one of {', '.join(_BY_NAME)} "
        "or an alias such as 'blue', 'red', 'nir', 'swir16'"
    )


def canonical_band_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """Canonicalise a list of band names and refuse duplicates.

    A single name given as a plain string (``"B04"``) is one band, not a sequence of letters.
    """
    listed = (names,) if isinstance(names, str) else names
    out = tuple(canonical_band_name(n) for n in listed)
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise BandError(f"band(s) given twice: {', '.join(dupes)}; give each band once")
    return out


def band_info(name: str) -> Band:
    """The :class:`Band` record for any accepted spelling of a band name."""
    return _BY_NAME[canonical_band_name(name)]


def native_resolution(name: str) -> int:
    """Native resolution of a band in metres."""
    return band_info(name).resolution


def band_indices(available: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of ``wanted`` bands within ``available`` (both any spelling).

    Raises :class:`BandError` naming every missing band.
    """
    avail = [canonical_band_name(b) for b in available]
    want = [canonical_band_name(b) for b in wanted]
    missing = [b for b in want if b not in avail]
    if missing:
        raise BandError(
            f"missing band(s) {', '.join(missing)}; the input has {', '.join(avail) or 'none'}. "
            "Give the bands by name (e.g. bands=B02,B03,B04,B08) or choose a model that "
            "needs fewer bands"
        )
    return [avail.index(b) for b in want]
