"""The top-level entry points: listed in ``__all__``, loaded only when used."""

import subprocess
import sys

import s2clouds


def test_entry_points_are_lazy_and_resolve() -> None:
    code = (
        "import sys, s2clouds; "
        "assert 's2clouds.inference.predict' not in sys.modules; "
        "assert 'numpy' not in sys.modules; "
        "s2clouds.predict; assert 's2clouds.inference.predict' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in s2clouds.__all__:
        assert getattr(s2clouds, name) is not None and name in dir(s2clouds)
    from s2clouds.models.registry import get_model

    assert s2clouds.load_model is get_model
