"""s2clouds: cloud and cloud-shadow masks for Sentinel-2.

Importing the package is cheap; heavy modules load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
