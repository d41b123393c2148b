"""Quicklooks, mask colours, overlays and sample figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.bands import L1C_BANDS
from s2clouds.errors import BandError, LabelSchemeError, OutputError, S2CloudsError
from s2clouds.labels import CANONICAL_COLOURS
from s2clouds.viz import (
    mask_to_rgba,
    overlay,
    plot_sample,
    rgb_quicklook,
    save_figure,
    show_layer,
)

BANDS = ("B02", "B03", "B04", "B08")


def test_fixed_stretch_maps_0_to_0_3_reflectance_and_puts_red_first() -> None:
    image = np.zeros((4, 2, 3), dtype=np.float32)
    image[2] = [[0.0, 0.15, 0.3], [0.6, np.nan, -0.1]]  # B04 -> red
    image[0] = 0.3  # B02 -> blue
    rgb = rgb_quicklook(image, BANDS, stretch="fixed")
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == [[0, 128, 255], [255, 0, 0]]
    assert np.all(rgb[..., 2] == 255) and np.all(rgb[..., 1] == 0)


def test_percentile_stretch_spans_the_full_range_and_ignores_nan() -> None:
    ramp = np.linspace(0.1, 0.2, 100, dtype=np.float32).reshape(10, 10)
    image = np.stack([ramp, ramp * 2, ramp * 3, ramp])
    image[:, 0, 0] = np.nan
    rgb = rgb_quicklook(image, BANDS)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    for channel in range(3):
        assert rgb[..., channel].min() == 0 and rgb[..., channel].max() == 255
        values = rgb[..., channel].ravel()[1:].astype(int)
        assert np.all(np.diff(values) >= 0)  # the ramp stays a ramp
        assert int(rgb[5, 0, channel]) == pytest.approx(128, abs=5)  # the middle stays mid-grey


def test_quicklook_needs_true_colour_bands_and_matching_shape() -> None:
    with pytest.raises(BandError, match="B04"):
        rgb_quicklook(np.zeros((2, 4, 4)), ("B02", "B03"))
    with pytest.raises(S2CloudsError, match="one name per channel"):
        rgb_quicklook(np.zeros((3, 4, 4)), BANDS)
    with pytest.raises(S2CloudsError, match="unknown stretch"):
        rgb_quicklook(np.zeros((4, 4, 4)), BANDS, stretch="log")


def test_mask_colours_come_from_the_canonical_table() -> None:
    mask = np.array([[0, 1, 2], [3, 255, 0]], dtype=np.uint8)
    rgba = mask_to_rgba(mask)
    assert rgba.shape == (2, 3, 4) and rgba.dtype == np.uint8
    for value in (0, 1, 2, 3, 255):
        row, col = np.argwhere(mask == value)[0]
        assert tuple(rgba[row, col]) == CANONICAL_COLOURS[value]
    assert rgba[1, 1, 3] == 0
    with pytest.raises(LabelSchemeError, match="to_canonical"):
        mask_to_rgba(np.array([[0, 7]]))
    with pytest.raises(LabelSchemeError):
        mask_to_rgba(np.array([[-1, 300]]))


def test_overlay_blends_class_colours_and_leaves_no_data() -> None:
    rgb = np.full((1, 3, 3), 100, dtype=np.uint8)
    mask = np.array([[1, 255, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(overlay(rgb, mask, alpha=0.0), rgb)
    full = overlay(rgb, mask, alpha=1.0)
    assert tuple(full[0, 0]) == CANONICAL_COLOURS[1][:3]
    assert tuple(full[0, 1]) == (100, 100, 100)
    half = overlay(rgb, mask, alpha=0.5)
    assert tuple(half[0, 2]) == tuple(round((100 + c) / 2) for c in CANONICAL_COLOURS[0][:3])
    with pytest.raises(S2CloudsError, match="alpha"):
        overlay(rgb, mask, alpha=2.0)


def _sample(size: int = 16) -> dict:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (size, size)).astype(np.uint8)
    mask[0] = 255
    return {
        "image": rng.uniform(0, 0.4, (4, size, size)).astype(np.float32),
        "bands": BANDS,
        "mask_canonical": mask,
        "valid": mask != 255,
        "layers": {"elevation": np.arange(size * size, dtype=np.float32).reshape(size, size)},
    }


def test_plot_sample_draws_rgb_mask_legend_and_named_layers() -> None:
    fig = plot_sample(_sample(), title="demo", layers=["elevation", "valid"])
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == [
        "true colour (B04, B03, B02)",
        "canonical mask",
        "elevation",
        "valid",
    ]
    legend = axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "clear",
        "thick cloud",
        "thin cloud",
        "cloud shadow",
        "no data",
    ]
    assert fig.get_suptitle() == "demo"
    with pytest.raises(S2CloudsError, match="no layer 'slope'"):
        plot_sample(_sample(), layers=["slope"])


def test_plot_sample_without_rgb_or_mask_shows_the_first_band() -> None:
    sample = {"image": np.ones((1, 8, 8), np.float32), "bands": ("B08",)}
    fig = plot_sample(sample)
    assert [ax.get_title() for ax in fig.axes] == ["B08"]


def test_plot_sample_picks_true_colour_by_band_names() -> None:
    image = np.random.default_rng(2).uniform(0, 0.3, (3, 8, 8)).astype(np.float32)
    aliases = plot_sample({"image": image, "bands": ("blue", "green", "red")}, stretch="fixed")
    assert aliases.axes[0].get_title() == "true colour (B04, B03, B02)"
    np.testing.assert_array_equal(
        np.asarray(aliases.axes[0].images[0].get_array()),
        rgb_quicklook(image, ("B02", "B03", "B04"), stretch="fixed"),
    )
    radar = plot_sample({"image": image, "bands": ("VV", "VH", "angle")})
    assert radar.axes[0].get_title() == "VV"
    # a malformed sample is reported, not hidden behind a grey panel
    with pytest.raises(S2CloudsError, match="one name per channel"):
        plot_sample({"image": image[:2], "bands": ("B02", "B03", "B04")})


def test_show_layer_colours_masks_and_booleans() -> None:
    from matplotlib.figure import Figure

    mask = np.array([[0, 1], [3, 255]], dtype=np.uint8)
    axes = Figure().subplots(1, 3)
    show_layer(axes[0], "mask_canonical", mask)
    np.testing.assert_array_equal(axes[0].images[0].get_array(), mask_to_rgba(mask))
    show_layer(axes[1], "valid", mask != 255)
    assert axes[1].images[0].get_cmap().name == "gray"
    show_layer(axes[2], "elevation", mask.astype(np.float32))
    assert axes[2].images[0].get_cmap().name == "viridis" and axes[2].get_title() == "elevation"
    with pytest.raises(S2CloudsError, match=r"shape \(2, 2, 2\)"):
        show_layer(axes[2], "stack", np.zeros((2, 2, 2)))


def test_save_figure_is_atomic_and_checks_the_folder(tmp_path: Path) -> None:
    out = save_figure(plot_sample(_sample()), tmp_path / "quick.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["quick.png"]
    with pytest.raises(OutputError, match="does not exist"):
        save_figure(plot_sample(_sample()), tmp_path / "missing" / "quick.png")


def test_quicklook_of_a_real_l1c_scene(real_data: Path) -> None:
    arrays = np.load(real_data / "s2cloudless_l1c_scene" / "input_arrays.npz")
    image = np.moveaxis(arrays["s2_im"][0], -1, 0)  # README: all 13 L1C bands, catalogue order
    rgb = rgb_quicklook(image, L1C_BANDS)
    assert rgb.shape == (856, 512, 3)
    # a real scene spreads over the whole stretch; neither black nor saturated
    for channel in range(3):
        fraction_clipped = np.mean((rgb[..., channel] == 0) | (rgb[..., channel] == 255))
        assert fraction_clipped < 0.1
        assert rgb[..., channel].std() > 20
