"""Time-series masks: every date masked with the evidence of the other dates (array level).

A single-date model judges a pixel by its spectrum alone, so bright ground (salt flats, desert
cities) can look like cloud and dark ground (water, forest, burn scars) like shadow. The same
place seen on other dates tells what the surface looks like without cloud. Given a stack of
co-registered dates ``(T, C, H, W)`` (reflectance 0-1, NaN = no data) and the single-date
probabilities ``(T, 4, H, W)`` (canonical: clear, thick, thin, shadow), :func:`refine_series`
returns refined probabilities in four steps:

1. **Clear reference.** A date is a *reference date* at a pixel when the single-date model
   calls it clear with confidence (``p_clear >= clear_confidence``), or when, in a series of
   at least ``min_stable`` dates, it agrees with the median of all dates within
   ``stable_tolerance`` in every visible/SWIR band on at least half of the dates (a surface
   that looks the same on most dates is the surface, whatever the model says: clouds are
   transient). For each date the reference is the per-band median of the *other* reference
   dates (so a date never explains itself) within ``window_days`` when the dates are known. Pixels with fewer than
   ``min_reference`` other reference dates keep the single-date probabilities.
2. **Departure features** of the date from its reference, after matching the date's
   per-band offset as the change labeller does (:func:`~s2clouds.labels.change.match_offsets`),
   in units of the labeller's thresholds (:class:`~s2clouds.labels.change.ChangeRules`):
   visible rise (B02 and B04), flat rise (the B11 rise against 0.25 x the B02 rise: cloud is
   flat across visible and SWIR, snow and smoke are not), cirrus (B10 above its clear level
   and risen), snow (NDSI high), agreement (largest departure over the tolerance), NIR/SWIR
   darkening.
3. **Logistic combination.** Cloud: ``logit p = w . [1, logit p_single, features]``; shadow
   (conditional on not cloud): the same with the single-date shadow logit, the darkening
   where it lies at a consistent offset from the refined cloud
   (:func:`~s2clouds.labels.change.consistent_shadow`) and the agreement. The weights
   (:data:`CLOUD_WEIGHTS`, :data:`SHADOW_WEIGHTS`) were fitted by L2-regularised logistic
   regression on the change labels of the SEN12MS-CR pairs that are *not* held out
   (``benchmarks/series.py --fit``), each pair as a 2-date series.
4. **Physical guards.** Snow (NDSI above the labeller's level, no flat rise) never gains
   cloud probability over the single date; a date that agrees with its reference within the
   labeller's clear tolerance in every band (bright ground seen the same on other dates)
   keeps at most ``1 - clear_confidence`` cloud probability (the training pairs hold too
   few bright unchanged pixels that the single-date model calls cloud for the fit to learn
   this); shadow probability is zero where no refined
   cloud can cast it (:func:`~s2clouds.models.shadow_geometry.shadow_reach`, with the sun
   direction when known), and shadow without NIR and SWIR darkening never gains over the
   single date. Thick versus thin keeps the single date's split where it saw cloud, else
   follows the cloud opacity against the reference
   (:func:`~s2clouds.labels.change.cloud_opacity`).

Memory: the work is per band and per date on the window given; callers feed windows of the
common grid (see :mod:`s2clouds.inference.series`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError
from s2clouds.labels.change import (
    REQUIRED_BANDS,
    BandPlanes,
    ChangeRules,
    cloud_opacity,
    consistent_shadow,
    match_offsets,
    reference_pool,
    shadow_candidates,
    snow,
)
from s2clouds.models.shadow_geometry import shadow_reach

#: bands the series refinement needs (visible, NIR, SWIR; B10 is used when present)
SERIES_BANDS = REQUIRED_BANDS
#: bands whose rise counts as brightening (not NIR and red-edge: vegetation grows there)
BRIGHTENING_BANDS = ("B01", "B02", "B03", "B04", "B10")
#: bands whose agreement marks a stable surface
STABLE_BANDS = ("B02", "B04", "B08", "B11")

#: cloud log-odds weights: bias, single-date cloud logit, visible rise, flat rise, cirrus,
#: snow, brightening, unchanged (fitted by ``benchmarks/series.py --fit`` on the 33 k cloud and 337 k
#: not-cloud labelled pixels of the training pairs; the pairs' labels hold no snow, so its
#: weight is 0 and the snow guard of :func:`refine_date` does the work)
CLOUD_WEIGHTS: tuple[float, ...] = (0.69, 1.35, 0.13, 0.0, 4.5, 0.0, 3.63, -0.72)
#: shadow log-odds weights: bias, single-date shadow logit (given not cloud), darkening at a
#: consistent offset from cloud, darkening elsewhere, agreement
SHADOW_WEIGHTS: tuple[float, ...] = (-8.6, 0.73, 2.94, 1.4, 4.08)
CLOUD_FEATURES = (
    "bias",
    "single logit",
    "visible rise",
    "flat rise",
    "cirrus",
    "snow",
    "brightening",
    "unchanged",
)
SHADOW_FEATURES = (
    "bias",
    "single logit",
    "darkening near cloud",
    "darkening elsewhere",
    "agreement",
)


@dataclass(frozen=True)
class SeriesRules:
    """Settings of :func:`refine_series` (see the module docstring).

    ``clear_confidence``: single-date clear probability that makes a date a reference;
    ``min_reference``: least other reference dates for a reference (capped at T - 1);
    ``stable_tolerance``/``min_stable``: the persistent-surface test (reflectance, dates);
    ``change``: the change labeller's thresholds (feature units, snow, shadow search);
    ``cloud_weights``/``shadow_weights``: the logistic weights; ``shadow_reach_px``: farthest
    a shadow may lie from its cloud; ``window_days``: a date's reference comes from the dates
    this close when their days are known (seasons change the surface; as the labeller's
    :func:`~s2clouds.labels.change.temporal_reference`), else from ``window_dates`` dates
    either side in input order.
    """

    clear_confidence: float = 0.8
    min_reference: int = 2
    stable_tolerance: float = 0.03
    min_stable: int = 4
    change: ChangeRules = field(default_factory=ChangeRules)
    cloud_weights: tuple[float, ...] = CLOUD_WEIGHTS
    shadow_weights: tuple[float, ...] = SHADOW_WEIGHTS
    shadow_reach_px: int = 90
    window_days: float = 75.0
    window_dates: int = 6

    @property
    def context_px(self) -> int:
        """Pixels around a window that decide it: the farthest a shadow is searched or kept
        from its cloud, plus the margin the shadow is grown by."""
        return max(self.shadow_reach_px, self.change.max_shadow_offset) + self.change.shadow_margin


def require_series_bands(names: Sequence[str], fix: str) -> None:
    """:class:`BandError` when ``names`` lack a band of :data:`SERIES_BANDS`; ``fix`` says
    what the user can do."""
    missing = [b for b in SERIES_BANDS if b not in names]
    if missing:
        raise BandError(
            f"series masks need the bands {', '.join(SERIES_BANDS)} on every date; the input "
            f"lacks {', '.join(missing)}: {fix}"
        )


@dataclass
class SeriesResult:
    """``probs`` (T, 4, H, W) float32 refined probabilities; ``reference_count`` (T, H, W)
    int16 other reference dates behind each date's reference (0: single-date kept);
    ``refined`` (T, H, W) bool where the series changed the probabilities' source."""

    probs: np.ndarray
    reference_count: np.ndarray
    refined: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


def check_series(stack: np.ndarray, probs: np.ndarray, bands: Sequence[str]) -> tuple[str, ...]:
    """Band names of ``stack`` after checking shapes and bands; :class:`BandError` says how to
    fix the input."""
    names = canonical_band_names(tuple(bands))
    require_series_bands(
        names, "give multispectral scenes with SWIR (or predict the dates one by one)"
    )
    if stack.ndim != 4 or stack.shape[1] != len(names):
        raise BandError(
            f"a series must be a (T, C, H, W) stack with a plane per band ({len(names)} "
            f"bands); got {stack.shape}"
        )
    t, _, h, w = stack.shape
    if probs.shape != (t, 4, h, w):
        raise BandError(
            f"series probabilities must be (T, 4, H, W) = {(t, 4, h, w)}; got {probs.shape}"
        )
    return names


def pooled_median(values: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median over the first axis of ``values`` (P, H, W) where ``use`` (P, H, W);
    NaN where none. Returns the median (H, W) float32 and the count (H, W) int16."""
    masked = np.where(use & np.isfinite(values), values, np.nan).astype(np.float32)
    ordered = np.sort(masked, axis=0)  # NaN sort last
    n = np.isfinite(masked).sum(axis=0)
    lo = np.clip((n - 1) // 2, 0, None)[None]
    hi = np.clip(n // 2, 0, masked.shape[0] - 1)[None]
    median = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    median[n == 0] = np.nan
    return median.astype(np.float32), n.astype(np.int16)


def reference_pools(
    t: int, days: Sequence[float] | None, window_days: float, window_dates: int
) -> list[list[int]]:
    """For each date, the other dates its reference may use: those within ``window_days``
    (``days`` known) or ``window_dates`` places in the series (unknown: the dates are taken
    to be in time order), when at least three are that close; else all the others."""
    if days is None:
        when, reach = np.arange(t, dtype=np.float64), float(window_dates)
    else:
        when, reach = np.asarray(days, np.float64), window_days
    return [reference_pool(when, i, reach) for i in range(t)]


def series_reference(
    stack: np.ndarray,
    probs: np.ndarray,
    names: tuple[str, ...],
    rules: SeriesRules,
    days: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clear reference (T, C, H, W) float32 of every date from the other reference dates in
    its pool (:func:`reference_pools`), and how many dates are behind it (T, H, W) (see the
    module docstring, step 1)."""
    t = stack.shape[0]
    finite = np.all(np.isfinite(stack), axis=1)  # (T, H, W)
    use = (probs[:, 0] >= rules.clear_confidence) & finite
    if t >= rules.min_stable:
        close = np.ones_like(finite)
        for band in STABLE_BANDS:
            plane = np.where(finite, stack[:, names.index(band)], np.nan)
            centre, _ = pooled_median(plane, finite)
            with np.errstate(invalid="ignore"):
                close &= np.abs(plane - centre[None]) < rules.stable_tolerance
        close &= finite
        stable = close.sum(axis=0) >= np.maximum(rules.min_stable, 0.5 * finite.sum(axis=0))
        use |= close & stable[None]
    reference = np.empty(stack.shape, np.float32)
    count = np.zeros(finite.shape, np.int16)
    for i, pool in enumerate(reference_pools(t, days, rules.window_days, rules.window_dates)):
        for c in range(stack.shape[1]):
            reference[i, c] = pooled_median(stack[pool, c], use[pool])[0]
        count[i] = use[pool].sum(axis=0)  # the same for every band: ``use`` needs all finite
    return reference, count


def departure_features(
    image: np.ndarray, reference: np.ndarray, names: tuple[str, ...], change: ChangeRules
) -> dict[str, np.ndarray]:
    """Departure features of one date (C, H, W) from its reference (C, H, W), float32 (H, W)
    each, in units of the labeller's thresholds (see the module docstring, step 2)."""
    offsets, matched = match_offsets(image, reference, names, change)
    if matched < change.min_matched:  # overcast: nothing to match
        offsets = np.zeros_like(offsets)
    now = BandPlanes(image - offsets[:, None, None], names)
    ref = BandPlanes(reference, names)
    d = {b: now[b] - ref[b] for b in ("B02", "B04", "B08", "B11")}
    vis = np.minimum(d["B02"] / change.blue_rise, d["B04"] / change.red_rise)
    flat = (d["B11"] - change.flat_rise * d["B02"]) / change.blue_rise
    if now.has("B10"):
        cirrus = np.minimum(
            (now["B10"] - change.cirrus_level) / change.cirrus_rise,
            (now["B10"] - ref["B10"]) / change.cirrus_rise,
        )
    else:
        cirrus = np.full_like(vis, -2.0)
    visible = {"B02", "B03", "B04"}
    tol = np.asarray(
        [change.clear_visible if b in visible else change.clear_other for b in names], np.float32
    )[:, None, None]
    departure = (now.image - reference) / tol
    agreement = np.max(np.abs(departure), axis=0)
    bright_bands = [names.index(b) for b in BRIGHTENING_BANDS if b in names]
    brightening = np.max(departure[bright_bands], axis=0)
    dark = np.minimum(-d["B08"] / change.shadow_nir_drop, -d["B11"] / change.shadow_swir_drop)
    return {
        "visible rise": np.clip(vis, -2, 4),
        "flat rise": np.clip(flat, -4, 4),
        "cirrus": np.clip(cirrus, -2, 4),
        "snow": (snow(now, change) & (flat < 0)).astype(np.float32),
        "agreement": np.clip(agreement, 0, 4),
        "brightening": np.clip(brightening, -2, 4),
        "unchanged": np.clip(1 - agreement, 0, 1),
        "darkening": np.clip(dark, -2, 4),
        "shadow candidates": shadow_candidates(now, ref, change),
        "opacity": cloud_opacity(now, ref, change),
    }


def _cloud_design(p_cloud: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
    """(8, H, W) design of the cloud combination (order of :data:`CLOUD_FEATURES`)."""
    return np.stack(
        [
            np.ones_like(p_cloud),
            _logit(p_cloud),
            f["visible rise"],
            f["flat rise"],
            f["cirrus"],
            f["snow"],
            f["brightening"],
            f["unchanged"],
        ]
    )


def _shadow_design(p_shadow: np.ndarray, f: dict[str, np.ndarray], near: np.ndarray) -> np.ndarray:
    """(5, H, W) design of the shadow combination (order of :data:`SHADOW_FEATURES`)."""
    dark = np.maximum(f["darkening"], 0)
    return np.stack(
        [np.ones_like(p_shadow), _logit(p_shadow), dark * near, dark * ~near, f["agreement"]]
    )


def _combine(weights: Sequence[float], design: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, np.float32)[:, None, None]
    return _sigmoid(np.sum(w * design, axis=0))


def series_designs(
    image: np.ndarray,
    reference: np.ndarray,
    probs: np.ndarray,
    names: tuple[str, ...],
    rules: SeriesRules,
    *,
    cloud_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The cloud design (8, H, W), shadow design (5, H, W) and departure features of one date
    against its reference. The shadow's "near cloud" term projects ``cloud_mask`` (default:
    the cloud the cloud combination finds), so that the fit can use the labelled cloud."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f = departure_features(image, reference, names, rules.change)
        p_cloud1 = probs[1] + probs[2]
        cloud_design = _cloud_design(p_cloud1, f)
        if cloud_mask is None:
            cloud_mask = _combine(rules.cloud_weights, cloud_design) > 0.5
        visible_cloud = cloud_mask & (f["visible rise"] > 1)
        near, _ = consistent_shadow(visible_cloud, f["shadow candidates"], rules.change)
        p_shadow1 = probs[3] / np.maximum(1 - p_cloud1, 1e-4)
        shadow_design = _shadow_design(p_shadow1, f, near)
    return cloud_design, shadow_design, f


def refine_date(
    image: np.ndarray,
    reference: np.ndarray,
    probs: np.ndarray,
    names: tuple[str, ...],
    rules: SeriesRules,
    *,
    resolution: float = 10.0,
    sun: tuple[float, float] | None = None,
) -> np.ndarray:
    """Refined probabilities (4, H, W) of one date with a reference (no fallback here: the
    caller keeps the single-date probabilities where the reference is missing)."""
    cloud_design, shadow_design, f = series_designs(image, reference, probs, names, rules)
    p_cloud1 = probs[1] + probs[2]
    p_cloud = _combine(rules.cloud_weights, cloud_design)
    # snow: visible up without a flat rise never gains cloud probability
    p_cloud = np.where(f["snow"] > 0, np.minimum(p_cloud, p_cloud1), p_cloud)
    # unchanged from the reference in every band (the labeller's clear rule): no cloud came
    p_cloud = np.where(f["unchanged"] > 0, np.minimum(p_cloud, 1 - rules.clear_confidence), p_cloud)
    p_shadow = _combine(rules.shadow_weights, shadow_design)
    # shadow darkens NIR and SWIR: without that, no gain over the single date
    p_shadow1 = probs[3] / np.maximum(1 - p_cloud1, 1e-4)
    p_shadow = np.where(f["darkening"] > 0, p_shadow, np.minimum(p_shadow, p_shadow1))
    reach = shadow_reach(p_cloud > 0.5, resolution, rules.shadow_reach_px * resolution, sun)
    p_shadow = np.where(reach, p_shadow, 0.0)
    with np.errstate(invalid="ignore"):
        thick = (f["opacity"] >= rules.change.thick_opacity) & (f["visible rise"] > 1)
    thick_share = np.where(thick, 0.9, 0.1)  # a partial or cirrus-only rise is thin
    # where the single date saw cloud too, its thick/thin split stands
    single_share = probs[1] / np.maximum(p_cloud1, 1e-4)
    thick_share = np.where(p_cloud1 > 0.5, single_share, thick_share)
    out = np.empty_like(probs, dtype=np.float32)
    out[1] = p_cloud * thick_share
    out[2] = p_cloud * (1 - thick_share)
    out[3] = (1 - p_cloud) * p_shadow
    out[0] = 1 - out[1] - out[2] - out[3]
    return out


def refine_series(
    stack: np.ndarray,
    probs: np.ndarray,
    bands: Sequence[str],
    rules: SeriesRules | None = None,
    *,
    resolution: float = 10.0,
    sun: Sequence[tuple[float, float] | None] | None = None,
    days: Sequence[float] | None = None,
) -> SeriesResult:
    """Refine single-date probabilities ``probs`` (T, 4, H, W) of a co-registered ``stack``
    (T, C, H, W) of reflectance in ``bands`` order with the evidence of the other dates.

    ``resolution``: metres per pixel; ``sun``: per date (zenith, azimuth) degrees or None
    (unknown); ``days``: day numbers of the dates (None: unknown, every other date is a
    reference candidate). One date, or pixels with too few other clear dates, keep the single-date
    probabilities (see the module docstring).
    """
    rules = rules or SeriesRules()
    if stack.ndim == 4 and stack.shape[0] == 1 and probs.shape == (1, 4, *stack.shape[2:]):
        count = np.zeros((1, *stack.shape[2:]), np.int16)  # one date: nothing to compare
        return SeriesResult(probs.astype(np.float32, copy=True), count, count.astype(bool))
    names = check_series(stack, probs, bands)
    stack = stack.astype(np.float32, copy=False)
    probs = probs.astype(np.float32, copy=False)
    t = stack.shape[0]
    out = probs.copy()
    reference, count = series_reference(stack, probs, names, rules, days)
    need = max(1, min(rules.min_reference, t - 1))
    refined = (count >= need) & np.all(np.isfinite(stack), axis=1)
    suns = list(sun) if sun is not None else [None] * t
    for i in range(t):
        if not refined[i].any():
            continue
        ref = np.where(refined[i][None], reference[i], np.nan)
        new = refine_date(stack[i], ref, probs[i], names, rules, resolution=resolution, sun=suns[i])
        out[i] = np.where(refined[i][None], new, probs[i])
    return SeriesResult(out, count, refined)
