"""Benchmark: streaming confusion counts, named metrics, dataset protocols and reports.

``confusion`` (counts) -> ``metrics`` (scores from counts) -> ``protocols`` (what each dataset
scores) -> ``report`` (tables, CSV, Markdown/HTML with plots). matplotlib is imported only
when plots are drawn.
"""

from s2clouds.benchmark.confusion import BenchmarkError, ConfusionMatrix, PerImageConfusion
from s2clouds.benchmark.protocols import (
    PROTOCOLS,
    CloudMaskCatalogueProtocol,
    CloudSEN12Protocol,
    Protocol,
    Sen12msLandCoverProtocol,
    SpatioTemporalProtocol,
    get_protocol,
    protocol_from_rows,
    tasks_for_scheme,
)

__all__ = [
    "PROTOCOLS",
    "BenchmarkError",
    "CloudMaskCatalogueProtocol",
    "CloudSEN12Protocol",
    "ConfusionMatrix",
    "PerImageConfusion",
    "Protocol",
    "Sen12msLandCoverProtocol",
    "SpatioTemporalProtocol",
    "get_protocol",
    "protocol_from_rows",
    "tasks_for_scheme",
]
