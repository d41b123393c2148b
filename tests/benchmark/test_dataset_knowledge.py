"""What the benchmark needs to know about a dataset comes from its reader class."""

import pytest

from s2clouds.benchmark.protocols import get_protocol
from s2clouds.benchmark.runner import Masker, make_protocol
from s2clouds.datasets.registry import DATASETS, dataset_class
from s2clouds.errors import DatasetError


@pytest.mark.parametrize("kind", list(DATASETS))
def test_every_reader_names_its_protocol_and_its_layers(kind: str) -> None:
    reader = dataset_class(kind)
    protocol = make_protocol(reader.protocol, [Masker.parse("physical")])
    assert protocol.name == get_protocol(reader.protocol).name
    options = reader.benchmark_options(["test"], [])
    if kind == "cloudsen12":
        assert options == {"split": ["test"]}
        assert Masker.parse("layer:fmask", reader).layer is not None
    elif kind == "cloudsen12-taco":  # the extra part's masks
        assert options == {"split": ["test"]}
        assert Masker.parse("layer:unetmobv2_v2", reader).layer == "unetmobv2_v2"
        assert reader.benchmark_options(["test"], ["cloudscore_cs"])["layers"] == [
            "cloudscore_cs_v1_cloud"
        ]
    elif kind == "sen12ms":  # S2 against a canonical mask, no S1
        assert options == {"canonical": True, "with_s1": False}
    else:
        assert options == {}
        with pytest.raises(DatasetError, match="stores no mask layers"):
            reader.benchmark_options(["test"], ["fmask"])
