"""Label schemes as data: value tables and their exact mapping to the canonical scheme.

The canonical scheme is ``0 clear, 1 thick cloud, 2 thin cloud, 3 cloud shadow`` with
``255`` for no data. Every other scheme is a :class:`LabelScheme` whose ``to_canonical`` table
maps each of its values to a canonical value, and whose ``from_canonical`` table maps each
canonical class back. Merges that lose information are listed in ``lossy`` so that nobody
is surprised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW = 0, 1, 2, 3
NODATA = 255
CANONICAL_CLASSES: dict[int, str] = {
    CLEAR: "clear",
    THICK_CLOUD: "thick cloud",
    THIN_CLOUD: "thin cloud",
    CLOUD_SHADOW: "cloud shadow",
}
#: RGBA colours used for canonical masks in COG colour tables and plots.
CANONICAL_COLOURS: dict[int, tuple[int, int, int, int]] = {
    CLEAR: (38, 115, 0, 255),
    THICK_CLOUD: (255, 255, 255, 255),
    THIN_CLOUD: (0, 197, 255, 255),
    CLOUD_SHADOW: (120, 60, 0, 255),
    NODATA: (0, 0, 0, 0),
}


@dataclass(frozen=True)
class LabelScheme:
    """One label scheme of the field.

    ``classes`` maps each stored value to its name. ``to_canonical`` maps each stored value
    to a canonical value (``NODATA`` where the value means "no data" or "not classified").
    ``from_canonical`` maps each canonical class (0-3) to the stored value that represents it
    best; ``nodata`` is the value written for canonical no-data (None when the scheme has
    none, in which case no-data becomes ``fill``).
    """

    name: str
    title: str
    classes: Mapping[int, str]
    to_canonical: Mapping[int, int]
    from_canonical: Mapping[int, int]
    nodata: int | None = None
    lossy: tuple[str, ...] = ()
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        missing = set(self.classes) - set(self.to_canonical)
        if missing:
            raise ValueError(f"scheme {self.name}: values {sorted(missing)} lack a canonical map")
        if set(self.from_canonical) != set(CANONICAL_CLASSES):
            raise ValueError(f"scheme {self.name}: from_canonical must cover classes 0-3")

    def values_for(self, canonical_class: int) -> list[int]:
        """Every stored value that maps to ``canonical_class``."""
        return sorted(v for v, c in self.to_canonical.items() if c == canonical_class)
