"""The library does not speak CLI: its messages name parameters, and the command line maps
them to its flags (``s2clouds.cli.params``)."""

from __future__ import annotations

import ast
import importlib
import logging
import pickle
import re
from pathlib import Path

import click
import pytest

import s2clouds
from s2clouds.cli.main import SUBCOMMANDS, main
from s2clouds.cli.params import PARAM_FLAGS, library_reports, with_flags
from s2clouds.errors import OptionError, S2CloudsError, detached

PACKAGE = Path(s2clouds.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _options(command: click.Command) -> set[str]:
    found = {
        flag
        for param in command.params
        if isinstance(param, click.Option)
        for flag in (*param.opts, *param.secondary_opts)
    }
    if isinstance(command, click.Group):
        for child in command.commands.values():
            found |= _options(child)
    return found


def cli_flags() -> set[str]:
    """Every ``--flag`` of every subcommand (and their subcommands)."""
    flags: set[str] = set()
    for module, attr, _ in SUBCOMMANDS.values():
        flags |= _options(getattr(importlib.import_module(module), attr))
    return {flag for flag in flags if flag.startswith("--")}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (a bare string statement)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def flags_in_library() -> list[str]:
    """``file:line: --flag`` for each string literal (f-string parts too, docstrings not)
    outside ``cli/`` that names one of the command line's flags."""
    flags = cli_flags()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docs:
                    continue
                for flag in FLAG.findall(node.value):
                    if flag in flags:
                        where = path.relative_to(PACKAGE.parent)
                        found.append(f"{where}:{node.lineno}: {flag}")
    return found


def test_flags_are_collected_from_the_commands() -> None:
    flags = cli_flags()
    assert {"--quicklook", "--model", "--grid", "--no-resume", "--drop-incomplete"} <= flags


def test_no_library_string_names_a_flag() -> None:
    assert flags_in_library() == []


def test_every_mapped_flag_is_an_option_of_the_command_line() -> None:
    assert {f for f in PARAM_FLAGS.values() if f.startswith("--")} <= cli_flags()


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "the quicklook (quicklook=) needs B04; leave quicklook= out",
            "the quicklook (--quicklook) needs B04; leave --quicklook out",
        ),
        ("declare the scale (scale=dn|reflectance)", "declare the scale (--scale dn|reflectance)"),
        ("grid=EPSG:1,x is not CRS,RESOLUTION", "--grid EPSG:1,x is not CRS,RESOLUTION"),
        # a Python value is the library's own example, not a flag's
        ("give bands=['B02', 'B03'] or level='L1C'", "give bands=['B02', 'B03'] or level='L1C'"),
        ("pass overwrite=True to replace it", "pass --overwrite to replace it"),
        ("start afresh with resume=False", "start afresh with --no-resume"),
        ("check bounds=/grid=/like=", "check --bounds/--grid/--like"),
        ("the mask (output=)", "the mask (-o)"),
        # reader options and longer names are not parameters of the table
        ("e.g. -O scheme=canonical", "e.g. -O scheme=canonical"),
        ("pass unknown='nodata' or my_bands=3", "pass unknown='nodata' or my_bands=3"),
    ],
)
def test_messages_show_flags(message: str, shown: str) -> None:
    assert with_flags(message) == shown


def test_the_parameter_at_fault_leads_when_the_message_does_not_name_it() -> None:
    assert with_flags("inf is not a resolution", "grid") == "--grid: inf is not a resolution"
    assert with_flags("grid=x is bad", "grid") == "--grid x is bad"
    assert with_flags("no flag for this", "not_an_option") == "no flag for this"


def test_param_survives_pickling_and_detaching() -> None:
    error = OptionError("bounds=0, 0, 0, 0: west must be < east", param="bounds")
    for copy in (pickle.loads(pickle.dumps(error)), detached(error)):
        assert type(copy) is OptionError and copy.param == "bounds"
        assert str(copy) == str(error)
    assert S2CloudsError("x").param is None


def test_cli_error_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --bounds is refused by the library (OptionError, param "bounds"); the command
    line's one line names the flag."""
    with pytest.raises(SystemExit) as info:
        main(
            [
                "composite",
                str(tmp_path / "a.tif"),
                "-o",
                str(tmp_path / "c.tif"),
                "--bounds",
                "1,0,0,1",
                "--workers",
                "0",
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: --bounds 1, 0, 0, 1: west must be < east" in err


def test_library_is_silent_and_the_cli_shows_its_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("s2clouds.mosaic.composite")
    logger.info("left out: a.tif: give bands= with the bands every input has")
    assert capsys.readouterr() == ("", "")  # no handler: the library says nothing
    with library_reports(quiet=False):
        logger.info("resuming: %d of %d windows already done", 3, 9)
        logger.info("left out: a.tif: give bands= with the bands every input has")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "resuming: 3 of 9 windows already done",
        "left out: a.tif: give --bands with the bands every input has",
    ]
    with library_reports(quiet=True):
        logger.info("not shown")
    assert capsys.readouterr().out == ""
    assert not logging.getLogger("s2clouds").handlers  # nothing left behind


def test_composite_command_prints_what_the_library_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A composite that leaves an input out says so on stdout, as it did with ``announce``."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    paths = []
    for name, x0 in (("near.tif", 500_000.0), ("far.tif", 900_000.0)):
        path = tmp_path / f"2020-01-0{len(paths) + 1}_{name}"
        profile = {
            "driver": "GTiff",
            "width": 32,
            "height": 32,
            "count": 4,
            "dtype": "uint16",
            "crs": "EPSG:32633",
            "transform": from_origin(x0, 5_000_000.0, 10, 10),
        }
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.full((4, 32, 32), 1500, np.uint16))
            ds.descriptions = ("B02", "B03", "B04", "B08")
        paths.append(str(path))
    out = tmp_path / "c.tif"
    main(
        [
            "composite",
            *paths,
            "-o",
            str(out),
            "--score",
            "sen12ms",
            "--workers",
            "0",
            "--bounds",
            "500000,4999680,500320,5000000",
            "--drop-incomplete",
            "--no-quicklook",
        ]
    )
    stdout = capsys.readouterr().out
    assert "left out: " in stdout and "far.tif" in stdout and out.exists()


def test_predict_and_composite_share_the_cluster_options() -> None:
    from s2clouds.cli.composite import composite
    from s2clouds.cli.predict import predict

    def cluster(command: click.Command) -> dict[str, str | None]:
        names = ("workers", "threads", "scheduler")
        return {p.name: getattr(p, "help", None) for p in command.params if p.name in names}

    assert cluster(predict) == cluster(composite) and len(cluster(predict)) == 3
    model_help = next(p for p in predict.params if p.name == "model").help or ""
    assert "default: auto" in model_help
