"""One output window of a scene: read it with the model's context, run the model, and turn
class probabilities into the canonical mask. This is the unit of work of every engine."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from s2clouds.errors import detaching
from s2clouds.inference.options import RunOptions
from s2clouds.io.grid import CoarseMask, Window
from s2clouds.io.overviews import approximate_overviews
from s2clouds.io.scene import Scene
from s2clouds.io.sun import SunAngles
from s2clouds.io.tiling import blend_tiles
from s2clouds.labels.schemes import NODATA
from s2clouds.models.base import N_CLASSES, RUN_TILE, CloudModel, ModelContext, fill_clear
from s2clouds.models.cache import cached_model
from s2clouds.models.registry import get_model
from s2clouds.models.shadow_geometry import keep_shadow_within
from s2clouds.resample import upsample_bilinear

#: scenes longer than this many model pixels get their shadow constrained by a scene map
SCENE_REACH_MIN_PX = 2048
#: the long side (px) of the overview a scorer's shadow map is made from, at most (the
#: ``sen12ms`` scorer's physical model is cheap at this size)
REACH_OVERVIEW_PX = 2048
#: the same for the masker's scene map, which runs the model itself on the overview: 1024 px
#: (80 m on a 5490 px tile, 160 m on a full one). At 2048 px the map took 8 of the 25 s of a
#: 5490 px SAFE, all before the first window, and at 1024 px the masks of that SAFE and of two
#: 4608 px mosaics of real cloudy dates (one of broken cumulus, 0.6 % cloud) were identical to
#: those of the exact per-window constraint
SHADOW_MAP_OVERVIEW_PX = 1024


def model_halo(model: CloudModel, context: ModelContext) -> int:
    """Pixels of context a model needs around each block (at least its ``halo``)."""
    return max(model.halo, int(model.required_halo(context)))


def model_alignment(model: CloudModel, context: ModelContext) -> int:
    """Windows start on multiples of this many pixels (see ``CloudModel``)."""
    return max(1, int(model.required_alignment(context)))


def predict_array(
    model: CloudModel,
    image: np.ndarray,
    context: ModelContext,
    *,
    tile: int = 512,
    overlap: int = 64,
) -> np.ndarray:
    """Class probabilities (4, H, W) float32 for reflectance (C, H, W) in ``model.bands`` order.

    Models with a fixed input size (``tile_size`` not None) run on overlapping tiles blended
    with feathered weights (of ``tile`` pixels when it is :data:`RUN_TILE`); others see the
    whole array at once.
    """

    def run(x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x, context)

    tile_size = model.tile_size
    if tile_size is None:
        return run(image).astype(np.float32, copy=False)
    size = int(tile) if tile_size == RUN_TILE else int(tile_size)
    return blend_tiles(image, run, N_CLASSES, tile=size, overlap=min(overlap, size // 4))


def probabilities_to_mask(probs: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Canonical mask (H, W) uint8: most probable class, 255 where any band of ``image`` is NaN."""
    return mask_where_valid(probs, np.all(np.isfinite(image), axis=0))


def mask_where_valid(probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Canonical mask (H, W) uint8: most probable class, 255 where ``valid`` (H, W) is False."""
    mask = np.argmax(probs, axis=0).astype(np.uint8)
    mask[~valid] = NODATA
    return mask


def probability_percent(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Probabilities (4, h, w) float -> uint8 percent, 255 where the mask is no data."""
    out = np.clip(np.rint(probs * 100), 0, 100).astype(np.uint8)
    out[:, mask == NODATA] = NODATA
    return out


def expand_window(window: Window, halo: int, height: int, width: int, alignment: int = 1) -> Window:
    """``window`` grown by ``halo`` pixels on each side, clamped to the scene; its top-left
    corner is moved further up and left to a multiple of ``alignment``."""
    row = max(0, (window.row - halo) // alignment * alignment)
    col = max(0, (window.col - halo) // alignment * alignment)
    bottom = min(height, window.row + window.height + halo)
    right = min(width, window.col + window.width + halo)
    return Window(row, col, bottom - row, right - col)


def predict_window(
    scene: Scene,
    model: CloudModel,
    window: Window,
    run: RunOptions,
    context: ModelContext | None = None,
    *,
    reader: Callable[[Window], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask (h, w) uint8 and probabilities (4, h, w) float32 of one output ``window``.

    The window is read with the model's halo of context around it (clamped to the scene), so
    the result does not depend on which other windows are computed, or where: this is the unit
    of work that the engines (in-process or on a Dask cluster) distribute. A window too large
    for one model call (a model with a fixed ``tile_size``) is computed in pieces that are
    (see :func:`model_pieces`), so that no model call is cut into tiles whose seams would
    depend on the block.

    ``reader``: reflectance (C, h, w) of the scene's windows at its own resolution, for a
    caller that has read them already (it must cover :func:`full_read_window`); default
    ``scene.read``.
    """
    context = ModelContext.of_scene(scene) if context is None else context
    pieces = model_pieces(scene, model, window, run, context)
    if len(pieces) == 1:
        return _predict_piece(scene, model, window, run, context, reader)
    region = full_read_window(scene, model, window, run, context) if reader is None else None
    if region is not None:  # the pieces' halos overlap: read the pixels once
        pixels = scene.read(region)

        def reader(part: Window) -> np.ndarray:
            return pixels[(slice(None), *part.within(region))]

    mask = np.empty(window.shape, np.uint8)
    probs = np.empty((N_CLASSES, *window.shape), np.float32)
    for piece in pieces:
        core = piece.within(window)
        mask[core], probs[(slice(None), *core)] = _predict_piece(
            scene, model, piece, run, context, reader
        )
    return mask, probs


def _predict_piece(
    scene: Scene,
    model: CloudModel,
    window: Window,
    run: RunOptions,
    context: ModelContext,
    reader: Callable[[Window], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_window` of a window that the model sees in one call."""
    height, width = scene.grid.shape
    halo, alignment = model_halo(model, context), model_alignment(model, context)
    outer = expand_window(window, halo, height, width, alignment)
    factor = read_factor(scene, model, context, exact=run.exact_reads)
    if factor == 1:
        image = scene.read(outer) if reader is None else reader(outer)
        probs = predict_array(model, image, context, tile=run.tile, overlap=run.overlap)
        valid = np.all(np.isfinite(image), axis=0)
    elif run.exact_reads:
        probs, valid = coarse_probabilities(scene, model, outer, factor, context, run)
    else:
        with approximate_overviews():
            probs, valid = coarse_probabilities(scene, model, outer, factor, context, run)
    core = window.within(outer)
    probs, valid = probs[(slice(None), *core)], valid[core]
    if "shadow_reach" in scene.priors:
        keep_shadow_within(probs, scene.priors["shadow_reach"].window(window))
    return mask_where_valid(probs, valid), probs


def full_read_window(
    scene: Scene,
    model: CloudModel,
    window: Window,
    run: RunOptions,
    context: ModelContext | None = None,
) -> Window | None:
    """The window of the scene that :func:`predict_window` reads at the scene's own
    resolution for ``window`` (the window with the model's halo), or None when it reads
    overviews instead: a caller that needs those pixels too reads them once and passes a
    ``reader``."""
    context = ModelContext.of_scene(scene) if context is None else context
    if read_factor(scene, model, context, exact=run.exact_reads) != 1:
        return None
    halo, alignment = model_halo(model, context), model_alignment(model, context)
    return expand_window(window, halo, *scene.grid.shape, alignment)


def model_pieces(
    scene: Scene, model: CloudModel, window: Window, run: RunOptions, context: ModelContext
) -> list[Window]:
    """``window`` cut into pieces that, each with the model's halo, fit one model call:
    ``[window]`` when it fits already, when the model takes any size (``tile_size`` None),
    or when its halo leaves no room (then the call is tiled, see :func:`predict_array`).

    A model call cut into feathered tiles depends on where the tiles start, and a pixel
    model constrains shadow within each tile: masks would change with ``--block``. Pieces
    that fit are each computed as the whole scene would be."""
    tile_size = model.tile_size
    if tile_size is None:
        return [window]
    factor = read_factor(scene, model, context, exact=run.exact_reads)
    halo, alignment = model_halo(model, context), model_alignment(model, context)
    limit = int(tile_size or run.tile)  # model pixels per call, a side

    def fits(piece: Window) -> bool:
        outer = expand_window(piece, halo, *scene.grid.shape, alignment)
        seen = outer if factor == 1 else outer.coarsened(factor)
        return max(seen.shape) <= limit

    if fits(window):
        return [window]
    # a piece of `edge` px with its halo, its alignment and a partial coarse pixel each side
    edge = (limit - 2) * factor - 2 * halo - alignment
    edge -= edge % alignment
    if edge < alignment:
        return [window]
    pieces = [
        Window(
            row,
            col,
            min(edge, window.row + window.height - row),
            min(edge, window.col + window.width - col),
        )
        for row in range(window.row, window.row + window.height, edge)
        for col in range(window.col, window.col + window.width, edge)
    ]
    return pieces if all(map(fits, pieces)) else [window]


def read_factor(
    scene: Scene, model: CloudModel, context: ModelContext, *, exact: bool = True
) -> int:
    """How much coarser than its grid the scene is read for ``model``: the model's internal
    factor when every band has overviews for it (reading them decodes a quarter of the
    pixels at factor 2, and the model would average the full resolution anyway), else 1.
    ``exact``: only overviews that hold exact block means count (see
    :attr:`RunOptions.exact_reads`); otherwise JPEG 2000 resolution levels do too."""
    factor = int(model.internal_factor(context))
    if factor > 1 and scene.reads_cheaply_at(scene.grid.resolution * factor, exact=exact):
        return factor
    return 1


def coarse_probabilities(
    scene: Scene,
    model: CloudModel,
    window: Window,
    factor: int,
    context: ModelContext,
    run: RunOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (4, h, w) float32 of ``window`` from the model run on the scene read
    ``factor`` times coarser, interpolated back (bilinear, pixel centres) as the model
    does itself, and where the window has data (h, w) bool (clear = 1 elsewhere)."""
    image, valid = scene.read_coarse(window, factor)
    seen = replace(context, resolution=scene.grid.metres_per_pixel * factor)
    coarse = predict_array(model, image, seen, tile=run.tile, overlap=run.overlap)
    probs = upsample_bilinear(coarse, factor, window.shape)
    return fill_clear(probs, ~valid), valid


def prepare_scene(scene: Scene, run: RunOptions) -> tuple[Scene, CloudModel]:
    """Build the model for ``scene``, keep the bands it needs, and check the radiometry.

    Raises :class:`~s2clouds.errors.BandError`/``ModelError``/``RadiometryError`` before any
    output is opened. Returns the scene restricted to ``model.bands`` and the model.
    """
    model = get_model(run.model, scene.bands, scene.level)
    scene = scene.select(model.bands)
    scene.check_radiometry()
    return with_shadow_reach(with_sun_angles(scene, model), model), model


def with_sun_angles(scene: Scene, model: CloudModel) -> Scene:
    """``scene`` with sun angles estimated once from a whole-scene overview, when it has
    none and ``model`` can estimate them (``model.estimate_sun_angles`` is not None)."""
    estimate = model.estimate_sun_angles
    if scene.angles is not None or estimate is None:
        return scene
    overview, resolution = scene.overview()
    metres = resolution / scene.grid.resolution * scene.grid.metres_per_pixel
    zenith, azimuth = estimate(overview, metres)
    angles = SunAngles(float(zenith), float(azimuth), source="estimated from the image")
    return replace(scene, angles=angles)


def with_shadow_reach(scene: Scene, model: CloudModel, min_pixels: int | None = None) -> Scene:
    """``scene`` with ``priors["shadow_reach"]``: where its clouds can cast shadow, mapped
    once from an overview, when ``model`` constrains shadow that way
    (``model.overview_shadow_reach``) and the scene spans more than ``min_pixels`` model
    pixels (default :data:`SCENE_REACH_MIN_PX`; 0: always, as composites do, whose many
    small windows per input would each read the halo).

    Windows then need no halo as wide as the shadow reach (2.5 km is 250 px at 10 m on each
    side of a 1024 px block): on a full tile that halo was two thirds of the work. Smaller
    scenes keep the per-window constraint at the model's resolution.
    """
    mapper = model.overview_shadow_reach
    if mapper is None:
        return scene
    context = ModelContext.of_scene(scene)
    model_factor = int(model.internal_factor(context))
    model_pixels = max(scene.grid.shape) / model_factor
    if model_pixels <= (SCENE_REACH_MIN_PX if min_pixels is None else min_pixels):
        return scene
    # a power of two: COG overviews and JPEG 2000 levels hold exactly those block means
    steps = max(0, math.ceil(math.log2(model_pixels / SHADOW_MAP_OVERVIEW_PX)))
    factor = model_factor * 2**steps
    overview = scene_overview(scene, factor)
    resolution = scene.grid.metres_per_pixel * factor
    seen = replace(context, resolution=resolution, scene_shadow_reach=True)
    probs = blend_tiles(
        overview, lambda x: model.predict_proba(x, seen), N_CLASSES, tile=1024, overlap=64
    )
    reach = CoarseMask.of(mapper(probs, resolution, context), factor)
    return replace(scene, priors={**scene.priors, "shadow_reach": reach})


def scene_overview(scene: Scene, factor: int, rows: int = 128) -> np.ndarray:
    """Reflectance (C, h, w) float32 of the whole scene ``factor`` times coarser (block
    means), read in strips of ``rows`` overview rows to bound memory."""
    grid = scene.grid.at_resolution(scene.grid.resolution * factor)
    coarse = replace(scene, grid=grid)
    height = -(-scene.grid.height // factor)
    width = -(-scene.grid.width // factor)
    with approximate_overviews():  # a shadow map needs no exact block means
        strips = [
            coarse.read(Window(row, 0, min(rows, height - row), width))
            for row in range(0, height, rows)
        ]
    return np.concatenate(strips, axis=1)


@detaching
def compute_window(
    scene: Scene,
    model: CloudModel | str,
    window: Window,
    run: RunOptions,
    probabilities: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Compute one window: mask (h, w) uint8 and, when ``probabilities``, probabilities
    (4, h, w) uint8 percent. ``model`` is a built model, or its name (built once per process, see
    :func:`cached_model`). Library errors are raised :func:`~s2clouds.errors.detached` from
    their cause, so that they cross a cluster with their type and message."""
    built = cached_model(model, scene.bands) if isinstance(model, str) else model
    mask, probs = predict_window(scene, built, window, run)
    return mask, probability_percent(probs, mask) if probabilities else None
