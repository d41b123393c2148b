"""Errors of the right type: bad option values are OptionError, arrays of the wrong shape
ShapeMismatchError (not CRSMismatchError), each naming the parameter at fault."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine

from s2clouds.benchmark.confusion import ConfusionMatrix
from s2clouds.errors import CRSMismatchError, OptionError, S2CloudsError, ShapeMismatchError
from s2clouds.inference.series import grid_offset
from s2clouds.io.grid import Grid
from s2clouds.mosaic.composite import CompositeOptions
from s2clouds.mosaic.merge import parse_method
from s2clouds.mosaic.warp import GridRequest


def test_new_types_derive_from_the_root() -> None:
    for kind in (OptionError, ShapeMismatchError):
        assert issubclass(kind, S2CloudsError) and issubclass(kind, ValueError)
    assert not issubclass(ShapeMismatchError, CRSMismatchError)


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: GridRequest(crs="EPSG:32633", resolution=math.inf), "grid"),
        (lambda: GridRequest(crs="EPSG:32633", resolution=-10.0), "grid"),
        (lambda: GridRequest(bounds=(0.0, math.nan, 1.0, 1.0)), "bounds"),
        (lambda: GridRequest(bounds=(1.0, 0.0, 0.0, 1.0)), "bounds"),
        (lambda: parse_method("percentil:25"), "method"),
        (lambda: CompositeOptions(min_quality=1.5), "min_quality"),
        (lambda: CompositeOptions(block=0), "block"),
    ],
)
def test_bad_option_values_are_option_errors(make, param: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError) as info:
        make()
    assert info.value.param == param
    assert f"{param}=" in str(info.value) or param in ("grid", "method")
    assert "--" not in str(info.value)


def test_good_grid_requests_pass() -> None:
    request = GridRequest(crs="EPSG:32633", resolution=10.0, bounds=(0.0, 0.0, 10.0, 10.0))
    assert request.resolution == 10.0


def test_shape_errors_are_shape_mismatch_errors() -> None:
    with pytest.raises(ShapeMismatchError, match="differ in shape"):
        ConfusionMatrix(4).update(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    small, large = Grid(None, Affine.identity(), 4, 4), Grid(None, Affine.identity(), 5, 5)
    with pytest.raises(ShapeMismatchError, match="one size"):
        grid_offset(small, large, "b.npy", "a.npy")
