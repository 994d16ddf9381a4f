"""The pytest plugin for the adapter conformance suite (entry point ``pytest11``: ``centralita``).

Installed with Centralita, so any project that has Centralita installed — this repository or an
adapter's own — can run the suite, either by collecting it directly::

    pytest --pyargs centralita.testing.conformance --conformance-adapter mychannel

or through a test module of its own that imports it (``from centralita.testing.conformance
import *``).  Each check carries the ``adapter_conformance`` marker naming the cases it takes;
this plugin turns that into one test per (adapter, case).

``--conformance-adapter NAME`` (repeatable) or the ini option ``conformance_adapters`` limits the
run to the named adapters; by default every registered adapter is checked.
"""

from __future__ import annotations

import pytest

SUITE = "centralita.testing.conformance"
MARKER = "adapter_conformance"

# The checks are plain ``assert`` statements: have pytest rewrite them as it does in test files.
pytest.register_assert_rewrite(SUITE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("centralita", "Centralita adapter conformance")
    group.addoption(
        "--conformance-adapter",
        action="append",
        default=[],
        metavar="NAME",
        help="run the adapter conformance suite only for this registered channel (repeatable)",
    )
    parser.addini(
        "conformance_adapters",
        type="linelist",
        default=[],
        help="the registered channels the adapter conformance suite runs for (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(cases): a check of the adapter conformance suite, parametrised per adapter by "
        "centralita.testing.plugin",
    )


def selected_adapters(config: pytest.Config) -> list[str]:
    """The channels named on the command line or in the ini file; empty means every one."""
    names: list[str] = [*config.getoption("conformance_adapter"), *config.getini("conformance_adapters")]
    return [n for name in names for n in name.split(",") if n]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    from centralita.testing import conformance

    suite = conformance.adapters_under_test(selected_adapters(metafunc.config))
    argname, values, ids = suite.cases(marker.args[0])
    metafunc.parametrize(argname, values, ids=ids)
