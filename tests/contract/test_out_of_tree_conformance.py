"""The conformance suite ships with the package: an adapter developed out of tree runs it from
its own repository.

``examples/webchat_adapter`` plays that repository: it is copied to a directory of its own
(nothing of Centralita's tree or pytest configuration above it), installed with pip into a site
directory that only the fresh interpreter sees, and ``pytest --pyargs
centralita.testing.conformance`` runs there — found through the ``pytest11`` entry point that
installing Centralita registers, narrowed to the adapter with ``--conformance-adapter``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "webchat_adapter"
PIP_TIMEOUT_S = 300
PYTEST_TIMEOUT_S = 300
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
# What the adapter's developer types, in their repository: the suite, for their adapter.
RUN_THE_SUITE = [
    *(sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"),
    *("--pyargs", "centralita.testing.conformance", "--conformance-adapter", "webchat"),
]


def _run(args: list[str], *, cwd: Path, site: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    paths = [str(site), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        check=False,
    )


def test_installing_centralita_registers_the_conformance_plugin_for_pytest() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("centralita") == "centralita.testing.plugin"


def test_an_adapter_repository_runs_the_shipped_conformance_suite_from_its_own_directory(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "centralita-webchat"
    shutil.copytree(EXAMPLE, repository, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    site = tmp_path / "site"
    installed = _run(
        [*PIP_INSTALL, "--target", str(site), str(repository)],
        cwd=tmp_path,
        site=site,
        timeout=PIP_TIMEOUT_S,
    )
    assert installed.returncode == 0, (
        f"pip install failed:\n{installed.stdout[-3000:]}\n{installed.stderr[-3000:]}"
    )

    result = _run(
        RUN_THE_SUITE,
        cwd=repository,
        site=site,
        timeout=PYTEST_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    passed = re.findall(r"^PASSED (\S+)", output, flags=re.MULTILINE)
    assert len(passed) >= 30, output[-3000:]  # imports, kit, samples, tampering, malformed, sends, errors
    assert all("webchat" in test_id for test_id in passed if "[" in test_id), passed
    assert any("test_an_outbound_sample_is_delivered_through_the_loopback_peer[webchat" in t for t in passed)
