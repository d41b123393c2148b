import numpy as np
import pytest

from s2clouds.bands import (
    L1C_BANDS,
    L2A_BANDS,
    MSI_BANDS,
    band_indices,
    band_info,
    canonical_band_name,
)
from s2clouds.errors import BandError, RadiometryError
from s2clouds.radiometry import (
    DN_BASELINE_04,
    Radiometry,
    check_reflectance,
    radiometry_for_baseline,
    to_reflectance,
)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("B4", "B04"),
        ("b04", "B04"),
        ("red", "B04"),
        ("nir", "B08"),
        ("B8A", "B8A"),
        ("nir08", "B8A"),  # STAC (earth-search) asset key of the narrow NIR
        ("nir09", "B09"),
        ("b8a", "B8A"),
        ("swir16", "B11"),
        ("swir22", "B12"),
        ("cirrus", "B10"),
        ("B1", "B01"),
        ("SCL", "SCL"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert canonical_band_name(alias) == name


def test_catalogue_facts() -> None:
    assert len(MSI_BANDS) == 13 and len(L1C_BANDS) == 13 and "B10" not in L2A_BANDS
    assert band_info("B8A").resolution == 20 and band_info("B02").resolution == 10
    assert band_info("B01").wavelength_s2a == pytest.approx(442.7)
    assert band_info("B12").wavelength_s2b == pytest.approx(2185.7)


def test_unknown_and_missing_bands_say_what_to_do() -> None:
    with pytest.raises(BandError, match="unknown Sentinel-2 band"):
        canonical_band_name("B13")
    with pytest.raises(BandError, match="missing band.*B11"):
        band_indices(["B02", "B03"], ["B02", "B11"])


def test_baseline_offset_gives_same_reflectance() -> None:
    reflectance = np.full((1, 2, 2), 0.2, np.float32)
    old_dn = np.round(reflectance * 10000)
    new_dn = old_dn + 1000  # baseline 04.00 stores DN = refl * 10000 + 1000
    old = to_reflectance(old_dn, ["B02"], radiometry_for_baseline("03.01"))
    new = to_reflectance(new_dn, ["B02"], radiometry_for_baseline("N0400"))
    np.testing.assert_allclose(old, new)
    np.testing.assert_allclose(new, 0.2, atol=1e-6)
    assert DN_BASELINE_04.offset("B04") == -1000


def test_nodata_becomes_nan() -> None:
    out = to_reflectance(np.array([[[0, 2000]]]), ["B02"], Radiometry())
    assert np.isnan(out[0, 0, 0]) and out[0, 0, 1] == pytest.approx(0.2)


def test_suspicious_scaling_is_refused() -> None:
    with pytest.raises(RadiometryError, match="unscaled digital numbers"):
        check_reflectance(np.full((1, 4, 4), 2500.0))
    with pytest.raises(RadiometryError, match="scaled twice"):
        check_reflectance(np.full((1, 4, 4), 25.0))
    with pytest.raises(RadiometryError, match="divided by 10000 twice"):
        check_reflectance(np.full((1, 4, 4), 2.5e-5))
    with pytest.warns(UserWarning):
        check_reflectance(np.full((1, 4, 4), 2500.0), strict=False)
    check_reflectance(np.full((1, 4, 4), 0.3))
