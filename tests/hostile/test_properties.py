"""Property-based hostile inputs (hypothesis): any size, any JSON, any option text.

Each property states what must hold for every generated input: a correct result or one of
the package's own errors, never a traceback from deep inside numpy or click.
"""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2clouds.cli.options import parse_options
from s2clouds.errors import S2CloudsError
from s2clouds.models.base import ModelContext
from s2clouds.models.registry import get_model
from s2clouds.models.weights import WeightSpec
from s2clouds.resample import block_mean, upsample_bilinear

sizes = st.integers(min_value=1, max_value=140)
factors = st.sampled_from([1, 2, 3, 6])


@settings(max_examples=60, deadline=None)
@given(height=sizes, width=sizes, factor=factors, seed=st.integers(0, 2**16))
def test_block_mean_and_upsampling_take_any_size(height, width, factor, seed) -> None:
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, (2, height, width)).astype(np.float32)
    image[:, rng.random((height, width)) < 0.1] = np.nan
    coarse = block_mean(image, factor, fill=np.nan)
    assert coarse.shape == (2, -(-height // factor), -(-width // factor))
    finite = np.isfinite(coarse)
    assert np.all((coarse[finite] >= 0) & (coarse[finite] <= 1))
    back = upsample_bilinear(np.nan_to_num(coarse), factor, (height, width))
    assert back.shape == (2, height, width) and np.all(np.isfinite(back))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 90), width=st.integers(1, 90), resolution=st.sampled_from([10, 20, 60])
)
def test_the_default_model_gives_probabilities_for_any_size(height, width, resolution) -> None:
    model = get_model("auto", ("B02", "B03", "B04", "B08"))
    image = np.full((4, height, width), 0.08, np.float32)
    image[3] = 0.3
    probs = model.predict_proba(image, ModelContext(resolution=float(resolution)))
    assert probs.shape == (4, height, width)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
spec_keys = st.sampled_from(
    [
        "name",
        "architecture",
        "bands",
        "mean",
        "std",
        "tile_size",
        "halo",
        "stride",
        "size_multiple",
        "resolution",
        "sha256",
        "shadow_reach_m",
        "features",
        "classes",
    ]
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(spec_keys | st.text(max_size=8), json_values, max_size=10))
def test_any_spec_json_is_a_spec_or_a_model_error(data) -> None:
    try:
        spec = WeightSpec.from_json(json.dumps(data))
    except S2CloudsError:
        return
    assert spec.bands and len(spec.mean) == len(spec.bands)


@settings(max_examples=150, deadline=None)
@given(options=st.lists(st.text(max_size=30), max_size=5))
def test_any_option_text_parses_or_is_a_usage_error(options) -> None:
    try:
        parsed = parse_options(tuple(options))
    except click.BadParameter:
        return
    assert all(isinstance(key, str) and key for key in parsed)


@pytest.mark.parametrize("text", ["canonical=no", "crop=maybe"])
def test_yes_no_words_are_not_silently_true(text) -> None:
    parsed = parse_options((text,))
    assert list(parsed.values()) != [True]
