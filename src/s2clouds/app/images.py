"""The images of a project as the app sees them: reflectance held in memory, views rendered
as stretched PNG tiles, flood fill, and the assistant (the pixel model fitted on strokes)."""

from __future__ import annotations

import ast
import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from s2clouds.app.project import ImageSpec, Project, ProjectError, ViewSpec
from s2clouds.io.grid import Grid
from s2clouds.io.scene import Scene
from s2clouds.labels import NODATA
from s2clouds.models.base import N_CLASSES

TILE = 256
#: the app holds an image's reflectance in memory: larger images are refused (cut them into
#: chips, or list them at 20 m); 25 Mpx of 4 bands is 400 MB of float32
MAX_PIXELS = 25_000_000
#: images kept in memory at once
CACHE_IMAGES = 4
#: largest window a flood fill explores around its seed
FLOOD_WINDOW = 1024
DEFAULT_STRETCH = (2.0, 98.0)
#: block edge (px) of the assistant's features and predictions
BLOCK = 1024


@dataclass
class LoadedImage:
    spec: ImageSpec
    grid: Grid
    bands: tuple[str, ...]
    reflectance: np.ndarray  # (C, H, W) float32, NaN = no data
    sample: np.ndarray  # (C, N) finite-or-NaN values drawn over the image for stretches
    scene: Scene | None = None
    #: the reference mask (the listed file or a dataset sample's label) and its scheme
    reference: tuple[np.ndarray, str] | None = None
    stretches: dict[tuple[str, float, float], np.ndarray] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    def band(self, name: str) -> np.ndarray:
        return np.asarray(self.reflectance[self.bands.index(name)])

    def has_bands(self, view: ViewSpec) -> bool:
        return all(b in self.bands for b in view.bands)


def load_image(spec: ImageSpec) -> LoadedImage:
    """Read the whole image (refusing more than :data:`MAX_PIXELS`): anything
    ``s2clouds predict`` reads (SAFE, GeoTIFF, band folder, STAC item JSON)."""
    from s2clouds.io.scenes import read_scene

    reference: tuple[np.ndarray, str] | None = None
    if spec.dataset is not None:
        scene, reference = read_sample(spec)
    else:
        scene = read_scene(spec.path, bands=spec.bands)
    if reference is None and spec.reference is not None:
        import rasterio

        with rasterio.open(spec.reference) as ds:
            reference = (ds.read(1), spec.reference_scheme)
    if spec.window is not None:
        scene = scene_window(scene, spec)
        if reference is not None:
            r, c, h, w = spec.window
            reference = (reference[0][r : r + h, c : c + w], reference[1])
    height, width = scene.grid.shape
    if height * width > MAX_PIXELS:
        raise ProjectError(
            f"image {spec.id} ({spec.path}) is {height} x {width} px, more than the app's "
            f"{MAX_PIXELS // 1_000_000} Mpx; list windows of it (window: [row, col, height, "
            "width]) or cut it into chips"
        )
    reflectance = scene.read().astype(np.float32, copy=False)
    step = max(1, int(np.sqrt(height * width / 250_000)))
    sample = reflectance[:, ::step, ::step].reshape(len(scene.bands), -1)
    return LoadedImage(spec, scene.grid, scene.bands, reflectance, sample, scene, reference)


def scene_window(scene: Scene, spec: ImageSpec) -> Scene:
    """The part of ``scene`` in ``spec.window``, read into memory, on its own sub-grid."""
    from s2clouds.io.grid import Window
    from s2clouds.io.scenes import scene_from_array

    assert spec.window is not None
    row, col, height, width = spec.window
    grid = scene.grid
    if row + height > grid.height or col + width > grid.width:
        raise ProjectError(
            f"image {spec.id}: window {list(spec.window)} reaches past the image "
            f"({grid.height} x {grid.width} px)"
        )
    window = Window(row, col, height, width)
    return scene_from_array(
        scene.read(window),
        scene.bands,
        resolution=grid.resolution,
        crs=grid.crs,
        transform=grid.window_transform(window),
        angles=scene.angles,
        level=scene.level,
    )


def read_sample(spec: ImageSpec) -> tuple[Scene, tuple[np.ndarray, str] | None]:
    """The scene of a dataset's sample, and its label with the dataset's scheme."""
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.io.scenes import scene_from_array

    assert spec.dataset is not None
    dataset = open_dataset(spec.dataset.path, spec.dataset.kind, **dict(spec.dataset.options))
    if not 0 <= spec.dataset.index < len(dataset):
        raise ProjectError(
            f"image {spec.id}: index {spec.dataset.index} is outside the dataset "
            f"({len(dataset)} samples)"
        )
    sample = dataset[spec.dataset.index]
    meta = sample.get("meta", {})
    scene = scene_from_array(
        sample["image"],
        sample["bands"],
        resolution=float(meta.get("resolution") or 10.0),
        crs=sample.get("crs"),
        transform=sample.get("transform"),
        level=meta.get("level"),
    )
    if spec.bands:
        scene = scene.select(spec.bands)
    from s2clouds.errors import LabelSchemeError
    from s2clouds.labels import get_scheme

    try:  # a cloud label scheme (not, e.g., SEN12MS's land cover)
        scheme = get_scheme(type(dataset).label_scheme).name
    except LabelSchemeError:
        return scene, None
    return scene, (np.asarray(sample["mask"]), scheme)


class ImageCache:
    """The project's images, read on first use and kept (least recently used out)."""

    def __init__(self, project: Project, size: int = CACHE_IMAGES) -> None:
        self.project, self.size = project, size
        self._images: OrderedDict[str, LoadedImage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image_id: str) -> LoadedImage:
        spec = self.project.image(image_id)  # KeyError for ids not in the project
        with self._lock:
            if image_id in self._images:
                self._images.move_to_end(image_id)
                return self._images[image_id]
        image = load_image(spec)
        with self._lock:
            self._images[image_id] = image
            while len(self._images) > self.size:
                self._images.popitem(last=False)
        return image


def evaluate_expression(
    expression: str, image: LoadedImage, rows: slice, cols: slice
) -> np.ndarray:
    """Band arithmetic (checked by :func:`~s2clouds.app.project.check_expression`) over a
    window; division by zero gives NaN."""
    from s2clouds.bands import canonical_band_name

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)  # type: ignore[arg-type]  # numbers only (checked)
        if isinstance(node, ast.Name):
            return image.band(canonical_band_name(node.id))[rows, cols]
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(right == 0, np.nan, left / np.where(right == 0, 1, right))
        raise ProjectError(f"expression {expression!r}: {type(node).__name__} not allowed")

    with np.errstate(invalid="ignore", over="ignore"):
        value = walk(ast.parse(expression, mode="eval"))
    return (
        np.broadcast_to(np.asarray(value, np.float32), image.shape)[rows, cols]
        if np.ndim(value) == 0
        else value
    )


def view_channels(image: LoadedImage, view: ViewSpec, rows: slice, cols: slice) -> np.ndarray:
    """(1 or 3, h, w) float32 values of ``view`` over a window."""
    if view.expression:
        return np.asarray(evaluate_expression(view.expression, image, rows, cols))[None]
    return np.stack([image.band(b)[rows, cols] for b in view.bands])


def view_stretch(image: LoadedImage, view: ViewSpec, low: float, high: float) -> np.ndarray:
    """(channels, 2) value range per channel: the ``low`` and ``high`` percentiles of the
    view over the whole image (RGB views share one range, so colours keep their balance)."""
    key = (view.name, low, high)
    with image.lock:
        if key in image.stretches:
            return image.stretches[key]
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 250_000)))
    values = view_channels(image, view, slice(None, None, step), slice(None, None, step))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = (float(v) for v in np.percentile(finite, [low, high]))
    if not hi > lo:
        hi = lo + 1e-6
    stretch = np.tile(np.array([lo, hi], np.float32), (values.shape[0], 1))
    with image.lock:
        image.stretches[key] = stretch
    return stretch


def render_tile(
    image: LoadedImage,
    view: ViewSpec,
    level: int,
    tx: int,
    ty: int,
    stretch: tuple[float, float] = DEFAULT_STRETCH,
) -> bytes:
    """PNG of tile (``tx``, ``ty``) at zoom ``level`` (0: full resolution, each level halves
    it): :data:`TILE` px square, transparent outside the image and where there is no data."""
    from PIL import Image

    factor = 2**level
    span = TILE * factor
    height, width = image.shape
    r0, c0 = ty * span, tx * span
    rows, cols = slice(r0, min(height, r0 + span), factor), slice(c0, min(width, c0 + span), factor)
    values = view_channels(image, view, rows, cols)
    ranges = view_stretch(image, view, *stretch)
    scaled = (values - ranges[:, :1, None]) / (ranges[:, 1:, None] - ranges[:, :1, None])
    valid = np.all(np.isfinite(values), axis=0)
    pixels = np.clip(np.nan_to_num(scaled) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    rgba = np.zeros((TILE, TILE, 4), np.uint8)
    h, w = valid.shape
    rgba[:h, :w, :3] = np.moveaxis(pixels, 0, -1)
    rgba[:h, :w, 3] = np.where(valid, 255, 0)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def flood_fill(
    image: LoadedImage, row: int, col: int, tolerance: float
) -> tuple[int, int, np.ndarray]:
    """The pixels connected to (``row``, ``col``) whose every band is within ``tolerance``
    (a share of the band's 2-98 % range) of the seed's: (row0, col0, region bool) inside a
    window of :data:`FLOOD_WINDOW` px around the seed."""
    from scipy import ndimage

    height, width = image.shape
    half = FLOOD_WINDOW // 2
    r0, c0 = max(0, row - half), max(0, col - half)
    r1, c1 = min(height, row + half), min(width, col + half)
    window = image.reflectance[:, r0:r1, c0:c1]
    seed = image.reflectance[:, row, col]
    if not np.all(np.isfinite(seed)):
        return r0, c0, np.zeros((r1 - r0, c1 - c0), bool)
    lo, hi = np.nanpercentile(image.sample, [2, 98], axis=1)
    spread = np.maximum(hi - lo, 1e-6)[:, None, None]
    with np.errstate(invalid="ignore"):
        close = np.all(np.abs(window - seed[:, None, None]) <= tolerance * spread, axis=0)
    labels, _ = ndimage.label(close)
    region = labels == labels[row - r0, col - c0]
    return r0, c0, region


@dataclass
class Proposal:
    mask: np.ndarray  # (H, W) uint8 canonical, 255 no data
    confidence: np.ndarray  # (H, W) uint8: top-1 minus top-2 probability, 0-255
    next_region: dict[str, int] | None
    scribbled: dict[int, int]
    seconds: float


def least_certain_region(
    confidence: np.ndarray, scribbles: np.ndarray, valid: np.ndarray
) -> dict[str, int] | None:
    """The square block (about an eighth of the image's short side, 16 px at least) where
    the model is least certain on average, among blocks mostly unlabelled and with data."""
    height, width = confidence.shape
    size = int(max(16, min(height, width) // 8))
    best, best_score = None, np.inf
    for r in range(0, height, size):
        for c in range(0, width, size):
            block = (slice(r, r + size), slice(c, c + size))
            ok = valid[block]
            if ok.mean() < 0.5 or (scribbles[block] != NODATA).mean() > 0.05:
                continue
            score = float(confidence[block][ok].mean())
            if score < best_score:
                best, best_score = (r, c), score
    if best is None:
        return None
    r, c = best
    return {"row": r, "col": c, "height": min(size, height - r), "width": min(size, width - c)}


def propose(
    image: LoadedImage, scribbles: np.ndarray, bands: tuple[str, ...] | None, rounds: int
) -> Proposal:
    """Fit the pixel model on ``scribbles`` (H, W canonical, 255 unlabelled) and predict the
    whole image; the confidence and the least certain region say where to label next.

    Features are computed block by block (only blocks holding strokes for the fit), so
    memory stays bounded by the block, not the image."""
    from s2clouds.errors import DatasetError
    from s2clouds.io.scenes import scene_from_array
    from s2clouds.train.annotate import scene_scribble_rows
    from s2clouds.train.pixel import PixelTrainConfig, fit_rows, scribble_config

    start = time.perf_counter()
    labelled = scribbles[scribbles != NODATA]
    present = np.unique(labelled)
    if present.size < 2:
        raise DatasetError(
            "paint strokes of at least two classes before asking the assistant "
            f"(found {present.size})"
        )
    use = bands or image.bands
    missing = [b for b in use if b not in image.bands]
    if missing:
        raise ProjectError(f"image {image.spec.id} lacks the assistant's bands {missing}")
    scene = scene_from_array(
        np.stack([image.band(b) for b in use]),
        use,
        resolution=image.grid.resolution,
        crs=image.grid.crs,
        transform=image.grid.transform,
    )
    config = scribble_config(use, PixelTrainConfig(rounds=rounds, min_data_in_leaf=20))
    rows, targets = scene_scribble_rows(scene, scribbles, config, block=BLOCK)
    fitted = fit_rows(rows, targets, config, resolution=image.grid.resolution)
    model = with_stride(fitted, scribbles.size)
    counts = np.bincount(targets, minlength=N_CLASSES)
    scribbled = {int(c): int(n) for c, n in enumerate(counts[:N_CLASSES]) if n}
    return blockwise_proposal(scene, model, scribbles, scribbled, start)


def assistant_stride(pixels: int) -> int:
    """Every how many pixels the assistant's trees run (bilinear in between): every pixel up
    to 1 Mpx, every 2nd up to 4 Mpx, every 4th beyond (as the shipped pixel model), which
    keeps a proposal within seconds: on 9 Mpx, fit and proposal take about 9 s instead of
    25 s on two shared cores."""
    return 1 if pixels <= 1 << 20 else 2 if pixels <= 1 << 22 else 4


def with_stride(model: Any, pixels: int) -> Any:
    """The fitted pixel ``model`` classifying every :func:`assistant_stride`-th pixel of an
    image of ``pixels`` pixels."""
    from dataclasses import replace

    from s2clouds.models.pixel import PixelModel
    from s2clouds.models.pixel_features import features_halo

    stride = assistant_stride(pixels)
    if stride == model.spec.stride:
        return model
    halo = features_halo(model.spec.features) + stride
    return PixelModel(model.booster, replace(model.spec, stride=stride, halo=halo))


@dataclass(frozen=True)
class _ProposalPlan:
    """What :func:`_proposal_window` needs: an in-memory scene and a model (this process)."""

    scene: Scene
    model: Any
    run: Any


def _proposal_window(plan: _ProposalPlan, window: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mask (h, w) uint8 and probabilities (4, h, w) float32 of one block of the image."""
    from s2clouds.inference.window import predict_window

    return predict_window(plan.scene, plan.model, window, plan.run)


class _ProposalSink:
    """Whole-image mask and top-1 minus top-2 probability margin, filled block by block."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.mask = np.full(shape, NODATA, np.uint8)
        self.margin = np.zeros(shape, np.float32)
        self.error: BaseException | None = None

    def open(self) -> None:
        pass

    def add(self, window: Any, result: tuple[np.ndarray, np.ndarray]) -> None:
        block, probs = result
        self.mask[window.slices] = block
        ordered = np.sort(probs, axis=0)
        self.margin[window.slices] = ordered[-1] - ordered[-2]

    def close(self, seconds: float) -> None:
        pass

    def fail(self, error: BaseException, seconds: float) -> None:
        self.error = error

    def drop(self, seconds: float) -> None:
        pass


def blockwise_proposal(
    scene: Scene, model: Any, scribbles: np.ndarray, scribbled: dict[int, int], start: float
) -> Proposal:
    """``model``'s mask and confidence over ``scene``, block by block with its halo (one job
    of the engine every driver uses, in this process: the scene and model are in memory)."""
    from s2clouds.inference.engine import Job, SerialEngine
    from s2clouds.inference.options import RunOptions
    from s2clouds.inference.sink import run_jobs

    plan = _ProposalPlan(scene, model, RunOptions(block=BLOCK))
    job = Job(0, _proposal_window, plan, tuple(scene.grid.windows(BLOCK)), name="the proposal")
    sink = _ProposalSink(scene.grid.shape)
    run_jobs([job], [sink], SerialEngine())
    if sink.error is not None:
        raise sink.error
    confidence = np.clip(sink.margin * 255 + 0.5, 0, 255).astype(np.uint8)
    region = least_certain_region(sink.margin, scribbles, sink.mask != NODATA)
    return Proposal(sink.mask, confidence, region, scribbled, time.perf_counter() - start)


def model_proposal(image: LoadedImage) -> Proposal:
    """The shipped model's mask of the image (the automatic choice for its bands and level),
    as a proposal to start from."""
    from s2clouds.inference.options import RunOptions
    from s2clouds.inference.window import prepare_scene

    if image.scene is None:
        raise ProjectError(f"image {image.spec.id} has no scene to run the model on")
    start = time.perf_counter()
    scene, model = prepare_scene(image.scene, RunOptions())
    none = np.full(image.shape, NODATA, np.uint8)
    return blockwise_proposal(scene, model, none, {}, start)
