"""Digital numbers to reflectance, with the processing-baseline 04.00 offset made explicit.

Sentinel-2 L1C/L2A products store reflectance as ``DN = reflectance * QUANTIFICATION_VALUE -
offset``. From processing baseline 04.00 (January 2022) the offset is ``RADIO_ADD_OFFSET``
(L1C) or ``BOA_ADD_OFFSET`` (L2A), normally -1000, so

    reflectance = (DN + offset) / QUANTIFICATION_VALUE

Every scene in s2clouds carries a :class:`Radiometry` that says how its numbers were made.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from s2clouds.errors import RadiometryError

DEFAULT_QUANTIFICATION = 10000.0
BASELINE_04_OFFSET = -1000.0


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
        if self.quantification <= 0:
            raise RadiometryError("quantification value must be positive (usually 10000)")

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


def check_reflectance(reflectance: np.ndarray, *, strict: bool = True) -> None:
    """Refuse (or warn about) stacks that do not look like 0-1 reflectance.

    * median above 100: looks like unscaled DN (did you forget ``kind='dn'``?)
    * median above 3: looks scaled by 100 (percent) or scaled twice
    * median below 1e-4 while non-zero: looks divided by 10000 twice
    With ``strict=False`` a warning is issued instead of an error.
    """
    finite = reflectance[np.isfinite(reflectance)]
    if finite.size == 0:
        return
    sample = finite[:: max(1, finite.size // 100_000)]
    median = float(np.median(sample))
    problem = None
    if median > 100:
        problem = (
            f"median value {median:.4g} looks like unscaled digital numbers; declare the input "
            "as DN (e.g. --scale dn) so it is divided by 10000, with the baseline offset"
        )
    elif median > 3:
        problem = (
            f"median value {median:.4g} is far above reflectance (0-1); the data may be in "
            "percent or scaled twice. Declare the right scale (--scale dn|reflectance)"
        )
    elif 0 < abs(median) < 1e-4:
        problem = (
            f"median value {median:.3g} is tiny; the data looks divided by 10000 twice. "
            "Declare it as reflectance (--scale reflectance)"
        )
    if problem is None:
        return
    if strict:
        raise RadiometryError(problem)
    warnings.warn(problem, stacklevel=2)
