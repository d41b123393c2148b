"""Grid alignment: the one whole-pixel offset of a grid on another."""

from __future__ import annotations

from affine import Affine

from s2clouds.io.grid import Grid

CRS = "EPSG:32633"


def grid(x: float, y: float, size: float = 10.0, crs: str | None = CRS) -> Grid:
    return Grid(crs, Affine(size, 0, x, 0, -size, y), 100, 80)


def test_offset_of_a_grid_shifted_by_whole_pixels() -> None:
    target = grid(500000, 4000000)
    assert grid(500030, 3999980).offset_on(target) == (2, 3)
    assert grid(499990, 4000050).offset_on(target) == (-5, -1)
    assert target.offset_on(target) == (0, 0)


def test_exact_offsets_need_pixel_corners_size_and_crs() -> None:
    target = grid(500000, 4000000)
    assert grid(500004, 4000000).offset_on(target) is None  # 0.4 px off
    assert grid(500000, 4000000, size=20).offset_on(target) is None
    assert grid(500000, 4000000, crs="EPSG:32632").offset_on(target) is None
    rotated = Grid(CRS, Affine(10, 1, 500000, 0, -10, 4000000), 10, 10)
    assert rotated.offset_on(target) is None and target.offset_on(rotated) is None


def test_nearest_offsets_round_to_the_target_pixels() -> None:
    target = grid(500000, 4000000)
    assert grid(500004, 3999984).offset_on(target, exact=False) == (2, 0)
    assert grid(500000, 4000000, crs="EPSG:32632").offset_on(target, exact=False) is None
    # rows are counted in the target's own row height (non-square pixels of EPSG:4326)
    degrees = Grid("EPSG:4326", Affine(0.001, 0, 10.0, 0, -0.0005, 45.0), 10, 10)
    shifted = Grid("EPSG:4326", Affine(0.001, 0, 10.002, 0, -0.0005, 44.9985), 10, 10)
    assert shifted.offset_on(degrees, exact=False) == (3, 2)
