"""Quicklooks: true-colour images, canonical mask colours and sample figures.

Array helpers (:func:`rgb_quicklook`, :func:`mask_to_rgba`, :func:`overlay`) need only numpy.
:func:`plot_sample`, :func:`show_layer` and :func:`save_figure` need matplotlib (the ``plot`` extra), which is
imported when they are called. Figures are built with ``matplotlib.figure.Figure`` directly,
never through ``pyplot``, so no GUI backend or global state is involved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds._optional import require
from s2clouds.bands import band_indices, canonical_band_name
from s2clouds.errors import BandError, LabelSchemeError, S2CloudsError
from s2clouds.labels.schemes import CANONICAL_CLASSES, CANONICAL_COLOURS, NODATA

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TRUE_COLOUR_BANDS = ("B04", "B03", "B02")
#: reflectance mapped to full brightness by the fixed stretch
FIXED_STRETCH_MAX = 0.3
STRETCHES = ("percentile", "fixed")
#: background behind the (transparent) no-data pixels of mask panels
_NODATA_BACKGROUND = (0.0, 0.0, 0.0, 1.0)

_MASK_LUT = np.zeros((256, 4), dtype=np.uint8)
for _value, _rgba in CANONICAL_COLOURS.items():
    _MASK_LUT[_value] = _rgba
_KNOWN_MASK_VALUES = np.zeros(256, dtype=bool)
_KNOWN_MASK_VALUES[list(CANONICAL_COLOURS)] = True


def _stretch_limits(
    channel: np.ndarray, stretch: str, percentiles: tuple[float, float]
) -> tuple[float, float]:
    """Reflectance mapped to 0 and to 255 for one (H, W) channel."""
    if stretch == "fixed":
        return 0.0, FIXED_STRETCH_MAX
    finite = channel[np.isfinite(channel)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, percentiles)
    return float(low), float(high)


def rgb_quicklook(
    image: np.ndarray,
    bands: Sequence[str],
    *,
    stretch: str = "percentile",
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> np.ndarray:
    """True-colour quicklook ``(H, W, 3) uint8`` of a reflectance stack.

    ``image`` is ``(C, H, W)`` float reflectance (unitless, 0-1) whose channels are named by
    ``bands`` (any spelling); B04, B03 and B02 become red, green and blue. ``stretch``:
    ``"percentile"`` maps the ``percentiles`` (default 2 and 98) of each channel's finite
    pixels to 0 and 255; ``"fixed"`` maps reflectance 0 to 0 and 0.3 to 255. Values are clipped;
    NaN pixels are black.
    """
    if stretch not in STRETCHES:
        raise S2CloudsError(f"unknown stretch {stretch!r}; use one of {', '.join(STRETCHES)}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != len(bands):
        raise S2CloudsError(
            f"image of shape {image.shape} does not match {len(bands)} band names; "
            "give a (C, H, W) stack and one name per channel"
        )
    rgb = np.zeros((*image.shape[1:], 3), dtype=np.uint8)
    for out, index in enumerate(band_indices(bands, TRUE_COLOUR_BANDS)):
        channel = image[index].astype(np.float32, copy=False)
        low, high = _stretch_limits(channel, stretch, percentiles)
        scaled = (channel - low) / max(high - low, 1e-6)
        rgb[..., out] = np.round(np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0) * 255)
    return rgb


def mask_to_rgba(mask: np.ndarray) -> np.ndarray:
    """Colour a canonical mask ``(H, W)`` (values 0-3 and 255) as ``(H, W, 4) uint8`` RGBA.

    Colours come from ``labels.CANONICAL_COLOURS``; no data (255) is fully transparent.
    Raises :class:`LabelSchemeError` for other values (translate the mask first).
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iub":
        raise LabelSchemeError(f"mask has dtype {mask.dtype}; give integer canonical labels")
    in_range = (mask >= 0) & (mask <= 255)
    if not np.all(in_range) or not np.all(_KNOWN_MASK_VALUES[mask.astype(np.uint8)]):
        found = np.unique(mask)[:10].tolist()
        raise LabelSchemeError(
            f"mask holds values {found}; canonical masks use 0-3 and 255. Translate it with "
            "s2clouds.labels.to_canonical(mask, scheme) first"
        )
    return _MASK_LUT[mask.astype(np.uint8)]


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend canonical mask colours over an ``(H, W, 3) uint8`` image; returns ``(H, W, 3) uint8``.

    ``alpha`` (0-1) is the opacity of the class colours; no-data pixels leave ``rgb`` as is.
    """
    if not 0.0 <= alpha <= 1.0:
        raise S2CloudsError(f"alpha must lie in 0-1, got {alpha}")
    rgb = np.asarray(rgb)
    rgba = mask_to_rgba(mask)
    if rgb.shape != (*rgba.shape[:2], 3):
        raise S2CloudsError(f"image {rgb.shape} and mask {rgba.shape[:2]} differ; give one grid")
    weight = alpha * rgba[..., 3:4].astype(np.float32) / 255.0
    blended = rgb.astype(np.float32) * (1.0 - weight) + rgba[..., :3].astype(np.float32) * weight
    return np.round(blended).astype(np.uint8)


def require_matplotlib() -> None:
    """Raise :class:`S2CloudsError` saying how to install matplotlib when it is missing."""
    require("matplotlib", "plot", purpose="plotting")


def _has_true_colour(bands: Sequence[str]) -> bool:
    """True when ``bands`` (any spelling) include B02, B03 and B04."""
    found = set()
    for name in bands:
        with contextlib.suppress(BandError):  # other layers (VV, elevation) are not bands
            found.add(canonical_band_name(name))
    return set(TRUE_COLOUR_BANDS) <= found


def _show_image_panel(ax: Axes, sample: Mapping[str, Any], stretch: str) -> None:
    """True colour where B02-B04 exist, else the first channel in grey."""
    image, bands = sample["image"], tuple(sample.get("bands") or ())
    if _has_true_colour(bands):
        ax.imshow(rgb_quicklook(image, bands, stretch=stretch))
        ax.set_title("true colour (B04, B03, B02)")
    else:
        ax.imshow(np.asarray(image)[0], cmap="gray")
        ax.set_title(f"{bands[0] if bands else 'channel 0'}")


def _show_mask_panel(ax: Axes, mask: np.ndarray) -> None:
    """Canonical mask in the canonical colours with a legend of class names."""
    from matplotlib.patches import Patch

    ax.set_facecolor(_NODATA_BACKGROUND)
    ax.imshow(mask_to_rgba(mask), interpolation="nearest")
    ax.set_title("canonical mask")
    colours = {v: tuple(np.array(CANONICAL_COLOURS[v]) / 255.0) for v in CANONICAL_CLASSES}
    colours[NODATA] = _NODATA_BACKGROUND  # transparent in the mask: the background shows
    names = dict(CANONICAL_CLASSES) | {NODATA: "no data"}
    handles = [Patch(facecolor=colours[v], edgecolor="grey", label=names[v]) for v in names]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")


def _layer_by_name(sample: Mapping[str, Any], name: str) -> np.ndarray:
    """An extra layer: ``sample["layers"][name]`` (``elevation`` also finds the stored key
    ``EXTRA_elevation``, case aside) or a top-level key such as ``valid``."""
    layers = sample.get("layers") or {}
    if name in layers:
        return np.asarray(layers[name])
    suffixed = [
        k for k in layers if k.lower() == name.lower() or k.lower().endswith(f"_{name.lower()}")
    ]
    if len(suffixed) == 1:
        return np.asarray(layers[suffixed[0]])
    if name in sample and sample[name] is not None:
        return np.asarray(sample[name])
    known = sorted(set(layers) | {k for k, v in sample.items() if isinstance(v, np.ndarray)})
    raise S2CloudsError(f"sample has no layer {name!r}; it has {', '.join(known) or 'none'}")


#: extra layer names that hold canonical masks (a masker's prediction beside the truth)
CANONICAL_LAYERS = ("prediction",)


def show_layer(ax: Axes, name: str, layer: np.ndarray, *, fig: Figure | None = None) -> None:
    """Draw one (H, W) layer on ``ax`` with ``name`` as title.

    ``mask_canonical`` and :data:`CANONICAL_LAYERS` in the canonical class colours, booleans
    in greys (True white), other values in viridis, with a colour bar when ``fig`` is given.
    """
    layer = np.asarray(layer)
    if layer.ndim != 2:
        raise S2CloudsError(f"layer {name!r} has shape {layer.shape}; only (H, W) layers plot")
    if name == "mask_canonical" or name in CANONICAL_LAYERS:
        ax.set_facecolor(_NODATA_BACKGROUND)
        ax.imshow(mask_to_rgba(layer), interpolation="nearest")
    elif layer.dtype.kind == "b":
        ax.imshow(layer, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        shown = ax.imshow(layer, cmap="viridis", interpolation="nearest")
        if fig is not None:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(name)


def plot_sample(
    sample: Mapping[str, Any],
    title: str | None = None,
    layers: Sequence[str] | None = None,
    *,
    stretch: str = "percentile",
    panel_size: float = 4.0,
) -> Figure:
    """A figure of one sample: true colour, the canonical mask, then extra layers.

    ``sample`` follows the dataset sample contract (``image`` (C, H, W) float reflectance,
    ``bands``, optional ``mask_canonical`` (H, W) uint8). ``layers`` names further (H, W)
    panels, looked up in ``sample["layers"]`` and then among the sample's keys (e.g.
    ``"valid"``, or a model's prediction put in the dict). Returns a matplotlib ``Figure``
    (no pyplot state); save it with :func:`save_figure`.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    extra = [(name, _layer_by_name(sample, name)) for name in (layers or ())]
    mask = sample.get("mask_canonical")
    n_panels = 1 + (mask is not None) + len(extra)
    fig = Figure(figsize=(panel_size * n_panels + 1.5 * (mask is not None), panel_size + 0.6))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    _show_image_panel(axes[0], sample, stretch)
    if mask is not None:
        _show_mask_panel(axes[1], np.asarray(mask))
    for ax, (name, layer) in zip(axes[1 + (mask is not None) :], extra, strict=True):
        show_layer(ax, name, layer, fig=fig)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(
    fig: Figure,
    path: str | Path,
    *,
    dpi: int = 100,
    overwrite: bool = True,
    tight: bool = False,
) -> Path:
    """Save ``fig`` to ``path`` atomically (temporary file beside it, then rename): the one
    way s2clouds saves figures (none of them changes matplotlib's global backend).

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``, ``.jpg``); ``tight`` crops
    the figure to its drawn area. Raises :class:`~s2clouds.errors.OutputError` when the
    folder is missing or not writable.
    """
    from s2clouds.io.write import atomic_path, check_writable

    path = Path(path)
    check_writable(path, overwrite=overwrite)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    return path


def label_sheet(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, Sequence[str]]],
    *,
    panel_size: float = 2.6,
    alpha: float = 0.45,
) -> Figure:
    """A sheet that lets a person check derived labels, one row per image pair.

    Each row is ``(title, cloudy, reference, mask, bands)``: ``cloudy`` and ``reference``
    (C, H, W) float reflectance in ``bands`` order and ``mask`` (H, W) uint8 canonical labels
    (255 = ignore). The columns show the cloudy image, the reference (both with one shared
    percentile stretch) and the labels over the cloudy image (ignore left uncoloured).
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3 * panel_size, panel_size * max(len(rows), 1) + 0.4))
    axes = fig.subplots(max(len(rows), 1), 3, squeeze=False)
    for ax_row, (title, cloudy, reference, mask, bands) in zip(axes, rows, strict=False):
        both = np.concatenate([cloudy, reference], axis=2)
        rgb = rgb_quicklook(both, bands, percentiles=(1.0, 99.0))
        width = cloudy.shape[2]
        panels = (rgb[:, :width], rgb[:, width:], overlay(rgb[:, :width], mask, alpha))
        for ax, panel, name in zip(ax_row, panels, ("cloudy", "reference", "labels"), strict=True):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title} {name}" if name == "cloudy" else name, fontsize=7)
    fig.tight_layout()
    return fig
