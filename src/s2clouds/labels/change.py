"""Cloud and shadow labels derived from change: a cloudy image against a clear reference.

The same place seen cloudy and clear a few days apart (the SEN12MS-CR pairs), or a date of a
time series against a per-pixel reference built from the other dates, tells where cloud and
shadow are by physics rather than by a model:

* **cloud** where reflectance rises in the visible bands with a flat spectrum (the rise in
  B11 is a fair share of the rise in B02: new snow and smoke rise in blue only), or where the
  cirrus band B10 rises above its clear-sky level;
* **thin cloud** where the rise is partial and the surface shows through: the opacity of the
  cloud layer, ``alpha = rise / (cloud albedo - surface)`` in the visible bands, stays below
  :attr:`ChangeRules.thick_opacity`, or where only cirrus is seen;
* **cloud shadow** where NIR and SWIR darken without a rise in blue, kept only where it lies
  at a consistent offset from the cloud mask (the projection direction and distance are
  searched per image: they follow the sun azimuth and the cloud height);
* **clear** where both images agree within a tolerance in every band;
* **ignore** (255) for everything else: real surface change between the dates (crops, water,
  melting snow), snow in either image, shadow candidates no cloud explains, pixels whose
  reference itself lies under cirrus (B10 above its clear-sky level; only a visible rise
  and a geometric shadow still count there), and a margin along every class edge.

The two images are first matched: a per-band offset (the median difference over pixels that
look unchanged) absorbs calibration and atmosphere differences between the dates. A pair
whose images cannot be matched (too little unchanged surface, a snow-covered reference) is
flagged unusable rather than labelled (:attr:`ChangeLabels.usable`).

All arrays are TOA or surface reflectance, unitless 0-1, (C, H, W) float32 in the order of
the band names given; NaN is no data. Labels are canonical (0 clear, 1 thick cloud, 2 thin
cloud, 3 cloud shadow, 255 ignore).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, LabelSchemeError
from s2clouds.labels.schemes import NODATA

CLEAR, THICK, THIN, SHADOW = 0, 1, 2, 3
#: bands the labeller cannot do without: visible, NIR and SWIR
REQUIRED_BANDS = ("B02", "B03", "B04", "B08", "B11")


@dataclass(frozen=True)
class ChangeRules:
    """Thresholds of the change labeller, in reflectance (0-1) unless stated.

    Cloud: ``blue_rise`` in B02 and ``red_rise`` in B04, with the B11 rise above
    ``flat_rise`` x the B02 rise. Cirrus: B10 above ``cirrus_level`` and risen by
    ``cirrus_rise``. Thickness: opacity ``alpha`` against a cloud layer of reflectance
    ``cloud_albedo`` (visible mean); ``alpha >= thick_opacity`` is thick cloud (the surface
    gives less than half the signal). ``cloud_albedo`` 0.46 is the median that
    :func:`calibrate_cloud_albedo` found on the SEN12MS-CR pairs (80 k vegetated cloudy
    pixels, interquartile range 0.35-0.59).
    Shadow: B08 drops by ``shadow_nir_drop`` and below ``shadow_nir_ratio`` x clear, B11 drops
    by ``shadow_swir_drop``, B02 rises by less than ``shadow_blue_rise``; kept within
    ``shadow_margin`` px of the cloud mask projected at the best offsets (searched up to
    ``max_shadow_offset`` px in ``directions`` directions).
    Clear: every band within ``clear_visible`` (B02-B04) or ``clear_other``.
    Snow: NDSI above ``snow_ndsi`` with B03 above ``snow_green`` in either image.
    ``edge``: pixels of margin around every class edge set to ignore.
    ``min_matched``: least share of unchanged pixels to match the images (below it the
    image is taken as overcast and no offset is applied); ``min_explained``: least share of
    pixels labelled (else the pair is unusable: mostly surface change);
    ``max_offset``: largest per-band offset the matching may absorb; when the blue offset
    exceeds ``haze_offset`` (haze over the whole image, or calibration?) no pixel is called
    clear.
    """

    blue_rise: float = 0.05
    red_rise: float = 0.04
    flat_rise: float = 0.25
    cirrus_level: float = 0.012
    cirrus_rise: float = 0.006
    cloud_albedo: float = 0.46
    thick_opacity: float = 0.5
    shadow_nir_drop: float = 0.04
    shadow_swir_drop: float = 0.03
    shadow_nir_ratio: float = 0.8
    shadow_blue_rise: float = 0.01
    shadow_margin: int = 3
    max_shadow_offset: int = 90
    directions: int = 36
    clear_visible: float = 0.025
    clear_other: float = 0.045
    snow_ndsi: float = 0.4
    snow_green: float = 0.15
    edge: int = 2
    min_matched: float = 0.05
    min_explained: float = 0.1
    max_offset: float = 0.04
    haze_offset: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.thick_opacity <= 1 or self.cloud_albedo <= 0:
            raise LabelSchemeError(
                "ChangeRules: thick_opacity must be in (0, 1] and cloud_albedo positive"
            )
        if self.edge < 0 or self.shadow_margin < 0 or self.directions < 4:
            raise LabelSchemeError(
                "ChangeRules: edge and shadow_margin must be >= 0 and directions >= 4"
            )


@dataclass
class ChangeLabels:
    """What the labeller found for one cloudy image.

    ``mask`` (H, W) uint8 canonical labels, 255 = ignore; ``opacity`` (H, W) float32 cloud
    opacity estimate (0 clear - 1 opaque, NaN where not cloud); ``offsets`` (C,) float32 the
    per-band offset subtracted from the cloudy image; ``shadow_offset`` (rows, cols) of the
    cloud-to-shadow projection found (None when no shadow was kept); ``usable``: False when
    the pair could not be matched (then ``mask`` is all 255) and ``reason`` says why.
    """

    mask: np.ndarray
    opacity: np.ndarray
    offsets: np.ndarray
    shadow_offset: tuple[int, int] | None = None
    usable: bool = True
    reason: str = ""

    def fractions(self) -> dict[str, float]:
        """Share of all pixels per label (clear, thick, thin, shadow, ignore)."""
        names = {CLEAR: "clear", THICK: "thick", THIN: "thin", SHADOW: "shadow", NODATA: "ignore"}
        return {name: float(np.mean(self.mask == value)) for value, name in names.items()}


class BandPlanes:
    """Planes of a (C, H, W) stack by canonical band name."""

    def __init__(self, image: np.ndarray, names: tuple[str, ...]) -> None:
        self.image, self.names = image, names

    def __getitem__(self, band: str) -> np.ndarray:
        return np.asarray(self.image[self.names.index(band)])

    def has(self, band: str) -> bool:
        return band in self.names


def _check_inputs(cloudy: np.ndarray, clear: np.ndarray, bands: Sequence[str]) -> tuple[str, ...]:
    names = canonical_band_names(tuple(bands))
    missing = [b for b in REQUIRED_BANDS if b not in names]
    if missing:
        raise BandError(
            f"change labels need the bands {', '.join(REQUIRED_BANDS)}; the images lack "
            f"{', '.join(missing)}: give multispectral images with SWIR"
        )
    if cloudy.ndim != 3 or cloudy.shape != clear.shape or cloudy.shape[0] != len(names):
        raise BandError(
            f"change labels need two (C, H, W) images of one shape with a plane per band "
            f"({len(names)} bands); got {cloudy.shape} and {clear.shape}"
        )
    return names


def _tolerances(names: tuple[str, ...], rules: ChangeRules) -> np.ndarray:
    """Per-band agreement tolerance (C, 1, 1)."""
    visible = {"B02", "B03", "B04"}
    tol = [rules.clear_visible if b in visible else rules.clear_other for b in names]
    # the cirrus band is nearly black over clear sky: a tighter tolerance
    tol = [min(t, rules.cirrus_rise) if b == "B10" else t for t, b in zip(tol, names, strict=True)]
    return np.asarray(tol, np.float32)[:, None, None]


def match_offsets(
    cloudy: np.ndarray, clear: np.ndarray, names: tuple[str, ...], rules: ChangeRules
) -> tuple[np.ndarray, float]:
    """Per-band offset (C,) float32 of ``cloudy`` over ``clear`` and the share of pixels
    found unchanged. Two passes: pixels that agree within twice the clear tolerance give a
    first median offset, then the pixels agreeing within the tolerance after it give the
    final one. Offsets are clipped to ``rules.max_offset`` so that scene-wide haze stays
    visible as a rise."""
    diff = cloudy - clear
    finite = np.all(np.isfinite(diff), axis=0)
    tol = _tolerances(names, rules)
    offsets = np.zeros(len(names), np.float32)
    share = 0.0
    for scale in (2.0, 1.0):
        unchanged = finite & np.all(np.abs(diff - offsets[:, None, None]) < scale * tol, axis=0)
        share = float(unchanged.sum()) / max(int(finite.sum()), 1)
        if unchanged.sum() < 50:
            break
        offsets = np.median(diff[:, unchanged], axis=1).astype(np.float32)
        offsets = np.clip(offsets, -rules.max_offset, rules.max_offset)
    return offsets, share


def snow(image: BandPlanes, rules: ChangeRules) -> np.ndarray:
    """(H, W) bool: snow or ice by NDSI and a bright green band."""
    b03, b11 = image["B03"], image["B11"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (b03 - b11) / np.maximum(b03 + b11, 1e-6)
    return np.asarray((ndsi > rules.snow_ndsi) & (b03 > rules.snow_green))


def cloud_opacity(cloudy: BandPlanes, clear: BandPlanes, rules: ChangeRules) -> np.ndarray:
    """(H, W) float32 opacity of a cloud layer of reflectance ``cloud_albedo`` over the clear
    surface, from the visible mean: ``(cloudy - clear) / (albedo - clear)``, clipped 0-1."""
    vis_cloudy = (cloudy["B02"] + cloudy["B03"] + cloudy["B04"]) / 3
    vis_clear = (clear["B02"] + clear["B03"] + clear["B04"]) / 3
    room = np.maximum(rules.cloud_albedo - vis_clear, 0.05)
    return np.asarray(np.clip((vis_cloudy - vis_clear) / room, 0.0, 1.0), dtype=np.float32)


def cloud_candidates(
    cloudy: BandPlanes, clear: BandPlanes, rules: ChangeRules
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool masks of visible cloud (a flat rise) and of cirrus (B10 rise)."""
    rise = {b: cloudy[b] - clear[b] for b in ("B02", "B04", "B11")}
    visible = (
        (rise["B02"] > rules.blue_rise)
        & (rise["B04"] > rules.red_rise)
        & (rise["B11"] > rules.flat_rise * rise["B02"])
    )
    if cloudy.has("B10"):
        cirrus = (cloudy["B10"] > rules.cirrus_level) & (
            cloudy["B10"] - clear["B10"] > rules.cirrus_rise
        )
    else:
        cirrus = np.zeros_like(visible)
    return visible, cirrus


def cirrus_sky(image: BandPlanes, rules: ChangeRules) -> np.ndarray:
    """(H, W) bool: the cirrus band above its clear-sky level (all False without B10)."""
    if not image.has("B10"):
        return np.zeros(image["B02"].shape, dtype=bool)
    return np.asarray(image["B10"] > rules.cirrus_level)


def shadow_candidates(cloudy: BandPlanes, clear: BandPlanes, rules: ChangeRules) -> np.ndarray:
    """(H, W) bool: darker in NIR and SWIR, not brighter in blue."""
    return np.asarray(
        (clear["B08"] - cloudy["B08"] > rules.shadow_nir_drop)
        & (cloudy["B08"] < rules.shadow_nir_ratio * clear["B08"])
        & (clear["B11"] - cloudy["B11"] > rules.shadow_swir_drop)
        & (cloudy["B02"] - clear["B02"] < rules.shadow_blue_rise)
    )


def shift_mask(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(H, W) bool ``mask`` moved by ``rows`` down and ``cols`` right (no wrap-around)."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(rows) >= h or abs(cols) >= w:
        return out
    src = mask[max(-rows, 0) : h - max(rows, 0), max(-cols, 0) : w - max(cols, 0)]
    out[max(rows, 0) : h - max(-rows, 0), max(cols, 0) : w - max(-cols, 0)] = src
    return out


def projection_steps(direction: float, max_offset: int, step: int = 2) -> list[tuple[int, int]]:
    """(rows, cols) offsets every ``step`` px along ``direction`` (radians, 0 = down the
    rows, counter-clockwise) up to ``max_offset`` px."""
    steps = []
    for distance in range(step, max_offset + 1, step):
        offset = (
            int(round(distance * np.cos(direction))),
            int(round(distance * np.sin(direction))),
        )
        if offset not in steps:
            steps.append(offset)
    return steps


def consistent_shadow(
    cloud: np.ndarray, candidates: np.ndarray, rules: ChangeRules
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Shadow candidates that lie at one consistent offset from the cloud.

    Every direction (``rules.directions`` of them) and distance (up to
    ``rules.max_shadow_offset`` px) is tried; the direction whose projections cover most
    candidates wins, and within it the distances covering at least half as many candidates as
    the best one (a range of cloud heights). Returns the kept shadow (H, W) bool and the best
    offset (rows, cols), or an empty mask and None when the cloud explains no shadow.
    """
    empty = np.zeros_like(candidates)
    if not cloud.any() or not candidates.any():
        return empty, None
    best: tuple[int, list[tuple[int, int]], list[int]] | None = None
    for k in range(rules.directions):
        steps = projection_steps(2 * np.pi * k / rules.directions, rules.max_shadow_offset)
        hits = [
            int(np.count_nonzero(shift_mask(cloud, r, c) & candidates & ~cloud)) for r, c in steps
        ]
        total = sum(sorted(hits)[-5:])  # the best few distances: clouds at a few heights
        if best is None or total > best[0]:
            best = (total, steps, hits)
    assert best is not None
    total, steps, hits = best
    top = max(hits)
    if top < max(20, 0.02 * candidates.sum()):
        return empty, None
    used = [s for s, h in zip(steps, hits, strict=True) if h >= 0.5 * top]
    projected = np.zeros_like(cloud)
    for r, c in used:
        projected |= shift_mask(cloud, r, c)
    if rules.shadow_margin:
        projected = ndimage.binary_dilation(projected, iterations=rules.shadow_margin)
    best_step = steps[int(np.argmax(hits))]
    return candidates & projected & ~cloud, best_step


def erode_classes(mask: np.ndarray, edge: int) -> np.ndarray:
    """``mask`` with a margin of ``edge`` px on both sides of every cloud and shadow edge set
    to ignore (255): where a cloud or shadow meets clear, another class or the unknown.
    Clear next to ignored change keeps its label (speckled agreement survives)."""
    if edge == 0:
        return mask
    out = mask.copy()
    structure = ndimage.generate_binary_structure(2, 1)
    for value in (THICK, THIN, SHADOW):
        region = mask == value
        if not region.any():
            continue
        grown = ndimage.binary_dilation(region, structure, iterations=edge)
        core = ndimage.binary_erosion(region, structure, iterations=edge, border_value=1)
        out[grown & ~core] = NODATA
    return out


def _clean(mask: np.ndarray, min_pixels: int = 4) -> np.ndarray:
    """Drop specks: connected cloud or shadow regions under ``min_pixels`` become ignore."""
    out = mask.copy()
    for value in (THICK, THIN, SHADOW):
        labels, n = ndimage.label(mask == value)
        if n:
            sizes = np.bincount(labels.ravel())
            small = sizes < min_pixels
            small[0] = False
            out[small[labels]] = NODATA
    return out


def change_labels(
    cloudy: np.ndarray,
    clear: np.ndarray,
    bands: Sequence[str],
    rules: ChangeRules | None = None,
) -> ChangeLabels:
    """Canonical labels of ``cloudy`` (C, H, W) against the co-registered clear reference
    ``clear`` (C, H, W), both reflectance in ``bands`` order (see the module docstring)."""
    rules = rules or ChangeRules()
    names = _check_inputs(cloudy, clear, bands)
    cloudy = cloudy.astype(np.float32, copy=False)
    clear = clear.astype(np.float32, copy=False)
    h, w = cloudy.shape[1:]
    finite = np.all(np.isfinite(cloudy), axis=0) & np.all(np.isfinite(clear), axis=0)
    offsets, matched = match_offsets(cloudy, clear, names, rules)
    nothing = np.full((h, w), NODATA, np.uint8)
    no_opacity = np.full((h, w), np.nan, np.float32)
    ref = BandPlanes(clear, names)
    ref_snow = snow(ref, rules) & finite
    if matched < rules.min_matched:  # an overcast image: nothing to match, no offset
        offsets = np.zeros_like(offsets)
    if ref_snow.mean() > 0.5:
        return ChangeLabels(
            nothing,
            no_opacity,
            offsets,
            usable=False,
            reason=f"the reference is {ref_snow.mean():.0%} snow",
        )
    now = BandPlanes(cloudy - offsets[:, None, None], names)
    visible, cirrus = cloud_candidates(now, ref, rules)
    cloud = (visible | cirrus) & finite
    opacity = cloud_opacity(now, ref, rules)
    thick = visible & (opacity >= rules.thick_opacity) & finite
    thin = cloud & ~thick
    # cirrus casts no shadow dark enough to see: project the visible cloud only
    shadow, shadow_offset = consistent_shadow(
        visible & finite, shadow_candidates(now, ref, rules) & finite, rules
    )
    shadow &= ~cloud
    agree = np.all(np.abs(now.image - clear) < _tolerances(names, rules), axis=0)
    mask = np.full((h, w), NODATA, np.uint8)
    hazy = offsets[names.index("B02")] > rules.haze_offset  # scene-wide haze or calibration?
    mask[agree & finite & ~hazy] = CLEAR
    mask[shadow] = SHADOW
    mask[thin] = THIN
    mask[thick] = THICK
    uncertain = ref_snow | (snow(now, rules) & ~visible) | ~finite
    mask[uncertain] = NODATA
    # a reference under cirrus is no clear reference: only a visible rise still counts
    mask[cirrus_sky(ref, rules) & ~thick & ~shadow] = NODATA
    mask = erode_classes(_clean(mask), rules.edge)
    explained = float(np.mean(mask != NODATA))
    if explained < rules.min_explained:
        return ChangeLabels(
            nothing,
            no_opacity,
            offsets,
            usable=False,
            reason=f"only {explained:.0%} of pixels explained: surface change",
        )
    return ChangeLabels(
        mask,
        np.where(cloud, opacity, np.nan).astype(np.float32),
        offsets,
        shadow_offset=shadow_offset,
    )


def calibrate_cloud_albedo(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    bands: Sequence[str],
    rules: ChangeRules | None = None,
) -> tuple[float, int]:
    """The cloud-layer reflectance that makes the visible opacity agree with how much of the
    surface shows through, from cloudy/clear ``pairs`` of (C, H, W) reflectance.

    Over vegetation, the red/NIR contrast that survives under a cloud is the layer's
    transmittance ``t`` (a thick cloud hides it, a thin one keeps part of it). With the
    layer model ``cloudy = t * clear + (1 - t) * albedo`` in the visible mean, each cloudy
    vegetated pixel with ``t < 0.8`` gives ``albedo = (cloudy - t * clear) / (1 - t)``.
    Returns the median albedo and the number of pixels used (0 and nan when none).
    """
    rules = rules or ChangeRules()
    names = canonical_band_names(tuple(bands))
    estimates = []
    for cloudy, clear in pairs:
        offsets, _ = match_offsets(cloudy, clear, names, rules)
        now = BandPlanes(cloudy - offsets[:, None, None], names)
        ref = BandPlanes(clear, names)
        visible, _ = cloud_candidates(now, ref, rules)
        contrast = ref["B08"] - ref["B04"]
        use = visible & (contrast > 0.15) & np.all(np.isfinite(cloudy), axis=0)
        t = np.clip((now["B08"] - now["B04"])[use] / contrast[use], 0.0, 1.0)
        vis_now = ((now["B02"] + now["B03"] + now["B04"]) / 3)[use]
        vis_ref = ((ref["B02"] + ref["B03"] + ref["B04"]) / 3)[use]
        keep = t < 0.8
        estimates.append((vis_now[keep] - t[keep] * vis_ref[keep]) / (1 - t[keep]))
    values = np.concatenate(estimates) if estimates else np.empty(0)
    if values.size == 0:
        return float("nan"), 0
    return float(np.median(values)), int(values.size)


def reference_pool(when: np.ndarray, index: int, reach: float) -> list[int]:
    """The other dates a reference of date ``index`` may use: those within ``reach`` of it
    in ``when`` (T,) (days, or places in the series), when at least three are that close;
    else all the others."""
    others = [i for i in range(len(when)) if i != index]
    near = [i for i in others if abs(when[i] - when[index]) <= reach]
    return near if len(near) >= 3 else others


def temporal_reference(
    series: np.ndarray,
    index: int,
    bands: Sequence[str],
    *,
    days: Sequence[float] | None = None,
    window_days: float = 75.0,
    rank: float = 0.35,
) -> np.ndarray:
    """A clear reference (C, H, W) float32 for date ``index`` of ``series`` (T, C, H, W).

    For every pixel, the other dates within ``window_days`` of it (all other dates when fewer
    than three are that close; ``days``: day numbers of the dates, default 0, 1, 2...) are
    ranked by blue reflectance, and the whole spectrum of the date at quantile ``rank`` is
    taken: clouds are bright in blue and shadows dark, so a low-middle rank is the clear
    surface as it looked around that date (a per-pixel medoid, never a mix of dates).
    """
    names = canonical_band_names(tuple(bands))
    if series.ndim != 4 or series.shape[1] != len(names):
        raise BandError(
            f"a time series must be (T, C, H, W) with a plane per band ({len(names)} bands); "
            f"got {series.shape}"
        )
    t = series.shape[0]
    if not 0 <= index < t or t < 3:
        raise BandError(f"a temporal reference needs at least 3 dates and index 0-{t - 1}")
    when = np.arange(t, dtype=np.float64) if days is None else np.asarray(days, np.float64)
    pool = reference_pool(when, index, window_days)
    stack = series[pool].astype(np.float32, copy=False)  # (P, C, H, W)
    blue = stack[:, names.index("B02")]
    blue = np.where(np.isfinite(blue), blue, np.inf)
    order = np.argsort(blue, axis=0)
    valid_count = np.isfinite(stack[:, names.index("B02")]).sum(axis=0)
    pick_rank = np.clip((rank * (valid_count - 1)).round().astype(np.int64), 0, len(pool) - 1)
    chosen = np.take_along_axis(order, pick_rank[None], axis=0)[0]  # (H, W)
    ref = np.take_along_axis(stack, chosen[None, None].repeat(stack.shape[1], axis=1), axis=0)[0]
    ref[:, valid_count == 0] = np.nan
    return np.asarray(ref)
