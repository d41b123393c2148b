"""Merge rules over a window stack: (T, C, H, W) values -> one (C, H, W) composite.

Every rule sees ``values`` (T, C, H, W) float32 (NaN = no data), ``quality`` (T, H, W) in
[0, 1] and ``good`` (T, H, W) bool, the clear observations (valid, quality >= the threshold).
Only good observations are used; pixels without one are NaN. The stack is in canonical order
(:mod:`s2clouds.mosaic.inputs`) and every tie goes to the earliest observation in it, so the
result does not depend on the order of the inputs.

Rules are registered by name (:data:`RULES`, :func:`register_rule`), with what they need;
:func:`merge` calls the registered rule's function (no rule is named in the code that runs it):

``best``      the observation of highest quality (its whole spectrum, bit for bit)
``medoid``    the observation closest (Euclidean, over bands) to the per-band median of the
              good observations (a whole spectrum, bit for bit)
``ranked``    the SEN12MS paper's merge (Schmitt et al. 2019, Section 3.1): whole images are
              ranked by their share of poor (not good) pixels, fewest first, and each pixel
              takes the good observation of the best-ranked image (a whole spectrum); the
              ranks come from a first pass over every window (``ranks``)
``median``    per-band median of the good observations
``percentile:P``  per-band P-th percentile (linear between order statistics)
``mean``      per-band mean weighted by quality
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from s2clouds.errors import OptionError, S2CloudsError
from s2clouds.registry import Registry


@dataclass(frozen=True)
class Stack:
    """One window stack: ``values`` (T, C, H, W), ``quality`` (T, H, W), ``good`` (T, H, W)
    and, for rules that rank whole images, ``ranks`` (T,) int: each observation's image rank
    (0 = fewest poor pixels)."""

    values: np.ndarray
    quality: np.ndarray
    good: np.ndarray
    ranks: np.ndarray | None = None


#: a rule: (stack, parameter) -> (H, W) stack index for rules that pick one observation,
#: else (C, H, W) float32 values
RuleFunction = Callable[[Stack, float], np.ndarray]


@dataclass(frozen=True)
class Rule:
    """A registered merge rule: its ``function``; whether it ``picks_one`` observation per
    pixel (then it returns indexes); whether it ``ranks_images`` (needs ``Stack.ranks``);
    whether it takes a ``parameter`` (``percentile:P``) and its default."""

    name: str
    function: RuleFunction
    picks_one: bool
    ranks_images: bool = False
    parameter: str | None = None
    default: float = 50.0
    description: str = ""


#: the merge rules by name (:func:`register_rule`)
RULES: Registry[Rule] = Registry("merge method", hint="(percentile takes :P, P from 0 to 100)")


def register_rule(rule: Rule, *, replace: bool = False) -> Rule:
    """Add a merge rule (a taken name is refused unless ``replace``);
    ``s2clouds composite --method NAME`` then runs it."""
    return RULES.register(rule.name, rule, replace=replace)


@dataclass(frozen=True)
class Method:
    """A merge rule by ``name`` and its parameter ``p`` (``percentile``: 0-100)."""

    name: str
    p: float = 50.0

    @property
    def rule(self) -> Rule:
        return get_rule(self.name)

    @property
    def picks_one(self) -> bool:
        """Whether each pixel is one observation's spectrum (best, medoid, ranked)."""
        return self.rule.picks_one

    @property
    def ranks_images(self) -> bool:
        """Whether the rule needs whole-image ranks (a first pass over every window)."""
        return self.rule.ranks_images

    def __str__(self) -> str:
        return f"{self.name}:{self.p:g}" if self.rule.parameter else self.name


def get_rule(name: str) -> Rule:
    """The rule ``name`` (:class:`~s2clouds.errors.UnknownNameError` listing the known)."""
    return RULES[name]


def method_names() -> str:
    """``best, medoid, ranked, median, percentile:P or mean`` (the registered rules)."""
    names = [f"{r.name}:P" if r.parameter else r.name for r in RULES.values()]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def parse_method(text: str) -> Method:
    """A registered rule name, with ``:P`` for rules that take a parameter (``percentile:25``,
    0 <= P <= 100)."""
    text = text.strip().lower()
    name, colon, argument = text.partition(":")
    if name not in RULES:
        raise RULES.unknown(text, param="method")
    rule = RULES[name]
    name = rule.name
    if not rule.parameter:
        if colon:
            raise OptionError(f"method={text}: {name} takes no parameter", param="method")
        return Method(name, rule.default)
    try:
        p = float(argument) if colon else rule.default
    except ValueError:
        p = -1.0
    if not 0 <= p <= 100:
        raise OptionError(
            f"method={text}: the {rule.parameter} must be from 0 to 100", param="method"
        )
    return Method(name, p)


@dataclass(frozen=True)
class Merged:
    """``values`` (C, H, W) float32, NaN without a good observation; ``chosen`` (H, W) int16,
    the stack index of the picked observation (best/medoid/ranked) or -1; ``quality`` (H, W)
    float32, the picked observation's quality (others: the mean of the good ones), NaN without
    one; ``count`` (H, W) int32, good observations."""

    values: np.ndarray
    chosen: np.ndarray
    quality: np.ndarray
    count: np.ndarray


def percentile_of_good(values: np.ndarray, good: np.ndarray, p: float) -> np.ndarray:
    """Per-band ``p``-th percentile over the good observations of (T, C, H, W) ``values``:
    (C, H, W), NaN where none. Sort-based and vectorised (no per-pixel loops)."""
    masked = np.where(good[:, None], values, np.nan)
    ordered = np.sort(masked, axis=0)  # NaN last
    n = good.sum(axis=0)[None]  # (1, H, W)
    position = np.maximum(n - 1, 0) * (p / 100.0)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    frac = (position - low).astype(np.float32)
    take_low = np.take_along_axis(ordered, np.broadcast_to(low, (1, *ordered.shape[1:])), 0)[0]
    take_high = np.take_along_axis(ordered, np.broadcast_to(high, (1, *ordered.shape[1:])), 0)[0]
    out = take_low + (take_high - take_low) * frac[0]
    out[:, n[0] == 0] = np.nan
    return out.astype(np.float32)


def rank_images(clear: Sequence[int], valid: Sequence[int]) -> tuple[int, ...]:
    """Rank of each image (0 first) by its share of poor pixels, ``1 - clear / valid``,
    fewest first; ties keep the canonical order and images without valid pixels come last."""
    shares = [1.0 - c / v if v else 2.0 for c, v in zip(clear, valid, strict=True)]
    order = sorted(range(len(shares)), key=lambda i: (shares[i], i))
    ranks = [0] * len(order)
    for rank, index in enumerate(order):
        ranks[index] = rank
    return tuple(ranks)


# ----------------------------------------------------------------------------- the rules
def _best(stack: Stack, p: float) -> np.ndarray:
    return np.argmax(np.where(stack.good, stack.quality, -np.inf), axis=0)


def _medoid(stack: Stack, p: float) -> np.ndarray:
    median = percentile_of_good(stack.values, stack.good, 50.0)
    distance = np.sum((stack.values - median[None]) ** 2, axis=1, dtype=np.float64)
    return np.argmin(np.where(stack.good, distance, np.inf), axis=0)


def _ranked(stack: Stack, p: float) -> np.ndarray:
    if stack.ranks is None or len(stack.ranks) != stack.good.shape[0]:
        raise S2CloudsError("the ranked merge needs one image rank per observation")
    ranks = np.asarray(stack.ranks, np.int64)[:, None, None]
    return np.argmin(np.where(stack.good, ranks, np.iinfo(np.int64).max), axis=0)


def _percentile(stack: Stack, p: float) -> np.ndarray:
    return percentile_of_good(stack.values, stack.good, p)


def _median(stack: Stack, p: float) -> np.ndarray:
    return percentile_of_good(stack.values, stack.good, 50.0)


def _mean(stack: Stack, p: float) -> np.ndarray:
    count = stack.good.sum(axis=0)
    weights = np.where(stack.good, stack.quality, 0.0).astype(np.float64)
    total = weights.sum(axis=0)
    filled = np.where(stack.good[:, None], stack.values, 0.0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (filled * weights[:, None]).sum(axis=0) / total
        # weights that are all zero (quality 0 but counted good): plain mean
        plain = filled.sum(axis=0) / np.maximum(count, 1)
    out = np.where(total > 0, out, plain).astype(np.float32)
    out[:, count == 0] = np.nan
    return out


for _rule in (
    Rule("best", _best, picks_one=True, description="highest quality"),
    Rule("medoid", _medoid, picks_one=True, description="closest to the median spectrum"),
    Rule(
        "ranked",
        _ranked,
        picks_one=True,
        ranks_images=True,
        description="SEN12MS: images ranked by their share of poor pixels, merged in order",
    ),
    Rule("median", _median, picks_one=False, description="per-band median"),
    Rule(
        "percentile",
        _percentile,
        picks_one=False,
        parameter="percentile",
        description="per-band percentile",
    ),
    Rule("mean", _mean, picks_one=False, description="per-band mean weighted by quality"),
):
    register_rule(_rule)


def _pick(values: np.ndarray, index: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(C, H, W): the spectrum of observation ``index`` (H, W) at each pixel, NaN without one."""
    picked = np.take_along_axis(values, index[None, None].astype(np.intp), axis=0)[0]
    picked[:, count == 0] = np.nan  # take_along_axis returns a new array
    return picked


def merge(
    values: np.ndarray,
    quality: np.ndarray,
    good: np.ndarray,
    method: Method,
    *,
    ranks: Sequence[int] | None = None,
) -> Merged:
    """Apply ``method`` (see the module docstring) to one window stack; ``ranks`` (T,) are the
    images' ranks for rules that rank whole images (see :func:`rank_images`)."""
    rule = method.rule
    stack = Stack(values, quality, good, None if ranks is None else np.asarray(ranks))
    count = good.sum(axis=0).astype(np.int32)
    none = count == 0
    result = rule.function(stack, method.p)
    if not rule.picks_one:
        with np.errstate(invalid="ignore"):
            mean_q = np.where(good, quality, 0.0).sum(axis=0) / np.maximum(count, 1)
        mean_q[none] = np.nan
        chosen = np.full(count.shape, -1, np.int16)
        return Merged(result, chosen, mean_q.astype(np.float32), count)
    chosen = np.where(none, -1, result).astype(np.int16)
    picked_q = np.take_along_axis(quality, result[None].astype(np.intp), axis=0)[0].astype(
        np.float32
    )
    picked_q[none] = np.nan
    return Merged(_pick(values, result, count), chosen, picked_q, count)
