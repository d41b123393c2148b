"""Digital numbers to reflectance, with the processing-baseline 04.00 offset made explicit.

Sentinel-2 L1C/L2A products store reflectance as ``DN = reflectance * QUANTIFICATION_VALUE -
offset``. From processing baseline 04.00 (January 2022) the offset is ``RADIO_ADD_OFFSET``
(L1C) or ``BOA_ADD_OFFSET`` (L2A), normally -1000, so

    reflectance = (DN + offset) / QUANTIFICATION_VALUE

Every scene in s2clouds carries a :class:`Radiometry` that says how its numbers were made.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from s2clouds.errors import RadiometryError

DEFAULT_QUANTIFICATION = 10000.0
BASELINE_04_OFFSET = -1000.0
#: quantification values s2clouds accepts (Sentinel-2 uses 10000; 1 means values are reflectance)
QUANTIFICATION_RANGE = (1.0, 1e6)
#: lowest median reflectance a band may have (dark water in L2A with offsets reaches about -0.01)
LOWEST_MEDIAN = -0.05
#: median below which reflectance looks divided by 10000 twice
TINY_MEDIAN = 1e-4
#: bands whose reflectance is near 0 by design (B10 cirrus sees almost nothing under clear
#: sky): a tiny or zero sample of them is normal
DARK_BANDS = frozenset({"B10"})
#: top-of-atmosphere blue (B02) is never darker than this: the atmosphere's own path
#: reflectance lies above it even over deep water and in cloud shadow (the darkest 1 % of
#: 330 real L1C images here sat at 0.033 or above; a quarter of real L2A images below 0.015)
L1C_BLUE_FLOOR = 0.02
#: share of valid B02 pixels that may lie below the floor (no-data edges, sensor defects)
L1C_DARK_SHARE = 0.01


@dataclass(frozen=True)
class Radiometry:
    """How stored values relate to reflectance.

    ``kind`` is ``"dn"`` (integers to be scaled) or ``"reflectance"`` (already unitless
    reflectance, e.g. 0.0-1.2). ``offsets`` maps canonical band names to the additive offset in
    DN (``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET``); missing bands use ``default_offset``.
    """

    kind: str = "dn"
    quantification: float = DEFAULT_QUANTIFICATION
    offsets: Mapping[str, float] = field(default_factory=dict)
    default_offset: float = 0.0
    level: str | None = None
    baseline: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("dn", "reflectance"):
            raise RadiometryError(
                f"unknown radiometry kind {self.kind!r}; use 'dn' (integer DN, scaled by "
                f"{DEFAULT_QUANTIFICATION:g}) or 'reflectance' (already scaled, 0-1)"
            )
        low, high = QUANTIFICATION_RANGE
        if not low <= self.quantification <= high:  # also refuses NaN
            raise RadiometryError(
                f"quantification value {self.quantification!r} is not a number from {low:g} to "
                f"{high:g} (Sentinel-2 uses 10000); the metadata is damaged or wrong"
            )
        offsets = [*self.offsets.items(), ("every band", self.default_offset)]
        for band, offset in offsets:
            if not (math.isfinite(offset) and abs(offset) <= self.quantification):
                raise RadiometryError(
                    f"offset {offset!r} of {band} is not a number within ±{self.quantification:g} "
                    "(Sentinel-2 uses -1000 or 0); the metadata is damaged or wrong"
                )

    def offset(self, band: str) -> float:
        """Additive DN offset for ``band`` (canonical name)."""
        return float(self.offsets.get(band, self.default_offset))

    def describe(self) -> str:
        """One line for logs and model metadata."""
        if self.kind == "reflectance":
            return "reflectance (unitless, 0-1)"
        offs = sorted({self.offset(b) for b in self.offsets} | {self.default_offset})
        return (
            f"DN / {self.quantification:g} with offset(s) {', '.join(f'{o:g}' for o in offs)}"
            + (f" (baseline {self.baseline})" if self.baseline else "")
        )


REFLECTANCE = Radiometry(kind="reflectance")
DN_NO_OFFSET = Radiometry(kind="dn")
DN_BASELINE_04 = Radiometry(kind="dn", default_offset=BASELINE_04_OFFSET, baseline="04.00")


def radiometry_for_baseline(baseline: str | None, level: str | None = None) -> Radiometry:
    """Radiometry implied by a processing baseline string such as ``"04.00"`` or ``"N0509"``.

    Use this only when the product's own metadata has no offsets; :func:`read_scene` reads them.
    """
    if baseline is None:
        return Radiometry(kind="dn", level=level)
    digits = baseline.upper().lstrip("N").replace(".", "")
    try:
        number = int(digits[:2])
    except ValueError as exc:
        raise RadiometryError(
            f"cannot parse processing baseline {baseline!r}; expected e.g. '04.00' or 'N0400'"
        ) from exc
    offset = BASELINE_04_OFFSET if number >= 4 else 0.0
    return Radiometry(kind="dn", default_offset=offset, level=level, baseline=baseline)


def to_reflectance(
    values: np.ndarray, bands: Sequence[str], radiometry: Radiometry, nodata: float | None = 0
) -> np.ndarray:
    """Convert a band stack ``(C, H, W)`` to float32 reflectance ``(C, H, W)``.

    ``bands`` are canonical names in stack order. Pixels equal to ``nodata`` in the input become
    NaN. Reflectance input is returned as float32 unchanged (apart from NaN for no-data).
    """
    if values.ndim != 3 or values.shape[0] != len(bands):
        raise RadiometryError(
            f"expected a (C, H, W) stack with C={len(bands)} for bands {list(bands)}, "
            f"got shape {values.shape}"
        )
    out = values.astype(np.float32, copy=True)
    invalid = values == nodata if nodata is not None else None
    if radiometry.kind == "dn":
        for i, band in enumerate(bands):
            out[i] += np.float32(radiometry.offset(band))
            out[i] /= np.float32(radiometry.quantification)
    if invalid is not None:
        out[invalid] = np.nan
    return out


def check_bands(reflectance: np.ndarray, bands: Sequence[str], *, strict: bool = True) -> None:
    """Refuse (or warn about) bands of a sample ``(C, h, w)`` that cannot be Sentinel-2
    reflectance: each band alone must pass :func:`check_reflectance`, must not be zero
    everywhere, and must not have a negative median (below :data:`LOWEST_MEDIAN`); the
    :data:`DARK_BANDS` may be near zero.

    Checking band by band catches one band scaled unlike the others (a float file among
    integer files). Bands without a valid pixel in the sample are not judged.
    """
    for band, plane in zip(bands, reflectance, strict=True):
        finite = plane[np.isfinite(plane)]
        if finite.size == 0:
            continue
        median = float(np.median(finite[:: max(1, finite.size // 100_000)]))
        if band in DARK_BANDS and abs(median) < TINY_MEDIAN:
            continue
        problem = None
        if not np.any(finite):
            problem = "is 0 everywhere: an empty band, not reflectance. Give the real band"
        elif median < LOWEST_MEDIAN:
            problem = (
                f"has median reflectance {median:.4g}, but reflectance is not negative: the "
                "scale or the offsets are wrong. Declare the right scale (scale=dn|reflectance)"
            )
        if problem is not None:
            _complain(f"band {band} {problem}", strict)
            continue
        try:
            check_reflectance(plane[None], strict=True)
        except RadiometryError as exc:
            _complain(f"band {band}: {exc}", strict)


def check_level(reflectance: np.ndarray, bands: Sequence[str], level: str | None) -> None:
    """Refuse a sample ``(C, h, w)`` declared ``level`` L1C (top-of-atmosphere) whose blue
    band is darker than any top-of-atmosphere blue (:data:`L1C_BLUE_FLOOR`) over more than
    :data:`L1C_DARK_SHARE` of its valid pixels: that is surface reflectance (L2A), and the
    L1C models would be given the wrong radiometry. Other levels and stacks without B02 pass
    (surface reflectance cannot be told from top-of-atmosphere over bright ground)."""
    if (level or "").upper() != "L1C" or "B02" not in bands:
        return
    blue = reflectance[list(bands).index("B02")]
    blue = blue[np.isfinite(blue)]
    if blue.size < 100:
        return
    dark = float(np.mean(blue < L1C_BLUE_FLOOR))
    if dark > L1C_DARK_SHARE:
        raise RadiometryError(
            f"the input is declared L1C (top-of-atmosphere), but {dark:.0%} of its B02 pixels "
            f"are darker than {L1C_BLUE_FLOOR}, below the atmosphere's own path reflectance: "
            "this is surface reflectance (L2A). Declare the level L2A (level=L2A), or give "
            "the L1C product"
        )


def _complain(problem: str, strict: bool) -> None:
    """Raise :class:`RadiometryError` with ``problem``, or only warn when not ``strict``."""
    if strict:
        raise RadiometryError(problem)
    warnings.warn(problem, stacklevel=3)


def check_reflectance(reflectance: np.ndarray, *, strict: bool = True) -> None:
    """Refuse (or warn about) stacks that do not look like 0-1 reflectance.

    * median above 100: looks like unscaled DN (did you forget ``kind='dn'``?)
    * median above 3: looks scaled by 100 (percent) or scaled twice
    * median below 1e-4 while non-zero: looks divided by 10000 twice
    With ``strict=False`` a warning is issued instead of an error.
    """
    flat = reflectance.reshape(-1)
    sample = flat[:: max(1, flat.size // 100_000)]  # a strided sample: no copy of the stack
    sample = sample[np.isfinite(sample)]
    if sample.size < 100:  # mostly no data: look at every finite value
        sample = flat[np.isfinite(flat)]
    if sample.size == 0:
        return
    median = float(np.median(sample))
    problem = None
    if median > 100:
        problem = (
            f"median value {median:.4g} looks like unscaled digital numbers; declare the input "
            "as DN (e.g. scale=dn) so it is divided by 10000, with the baseline offset"
        )
    elif median > 3:
        problem = (
            f"median value {median:.4g} is far above reflectance (0-1); the data may be in "
            "percent or scaled twice. Declare the right scale (scale=dn|reflectance)"
        )
    elif 0 < abs(median) < TINY_MEDIAN:
        problem = (
            f"median value {median:.3g} is tiny; the data looks divided by 10000 twice. "
            "Declare it as reflectance (scale=reflectance)"
        )
    if problem is not None:
        _complain(problem, strict)
