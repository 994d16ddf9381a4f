"""Dependencies point inward: the decision cores import no web, broker or ORM library, the
top-level packages import each other without a cycle, and nothing imports the composition root."""

from __future__ import annotations

import ast
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("aiohttp", "aio_pika", "aiormq", "sqlmodel", "sqlalchemy", "asyncpg", "aiosqlite", "aiosmtplib")

# Pure by design: the domain in core/, every parser, identity, the routing policy, the campaign model.
PURE = [
    *(ROOT / "core").rglob("*.py"),
    *(ROOT / "identity").rglob("*.py"),
    *(ROOT / "router" / "policy").rglob("*.py"),
    *(ROOT / "channels").glob("*/parse.py"),
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _transitive(path: Path, seen: set[Path]) -> set[str]:
    """Imports of a module and of the project modules it imports (a leak through a helper counts)."""
    if path in seen:
        return set()
    seen.add(path)
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        for module in modules:
            found.add(module.split(".")[0])
            target = ROOT / Path(*module.split("."))
            for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                if candidate.is_file():
                    found |= _transitive(candidate, seen)
    return found


def test_the_pure_modules_exist() -> None:
    assert len(PURE) > 5


def test_no_pure_module_imports_aiohttp_aio_pika_or_sqlmodel() -> None:
    leaks = {str(path.relative_to(ROOT)): sorted(_transitive(path, set()) & set(FORBIDDEN)) for path in PURE}
    leaks = {k: v for k, v in leaks.items() if v}
    assert leaks == {}, f"framework imports leaked into pure modules: {leaks}"


def test_no_channel_name_is_tested_in_the_core_identity_or_router() -> None:
    offenders = []
    for folder in ("core", "identity", "router"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in ("whatsapp", "instagram", "email"):
                for op in ("==", "!="):
                    for quote in ('"', "'"):
                        if f"{op} {quote}{name}{quote}" in text or f"{quote}{name}{quote} {op}" in text:
                            offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


# ------------------------------------------------------------------ the package graph
# The top-level packages and the one composition root (``centralita``) that nothing imports back.
PACKAGES = ("core", "storage", "broker", "identity", "router", "channels", "centralita")


def _modules_imported(path: Path) -> set[str]:
    """Every module ``path`` imports (see ``_imports_in``)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: tuple[str, ...]) -> set[str]:
    """The modules ``source`` imports — at the top, inside functions and under ``TYPE_CHECKING``
    — with relative imports resolved against ``package``, the module's own package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return found


def _package_edges() -> dict[str, dict[str, str]]:
    """package → {imported package: one module that imports it}."""
    edges: dict[str, dict[str, str]] = {name: {} for name in PACKAGES}
    for name in PACKAGES:
        for path in sorted((ROOT / name).rglob("*.py")):
            for module in _modules_imported(path):
                target = module.split(".")[0]
                if target in PACKAGES and target != name:
                    edges[name].setdefault(target, str(path.relative_to(ROOT)))
    return edges


def _cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        for target in sorted(edges[node]):
            if target in trail:
                cycle = [*trail[trail.index(target) :], target]
                if min(cycle[:-1]) == cycle[0]:  # each cycle once, from its smallest name
                    cycles.append(cycle)
            else:
                walk(target, [*trail, target])

    for start in PACKAGES:
        walk(start, [start])
    return cycles


def test_no_module_under_router_imports_the_composition_root() -> None:
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "router").rglob("*.py")
        for module in _modules_imported(path)
        if module.split(".")[0] == "centralita"
    )
    assert offenders == [], f"the router reaches up into centralita: {offenders}"


def test_core_imports_none_of_the_other_packages() -> None:
    assert _package_edges()["core"] == {}


def test_the_packages_import_each_other_without_a_cycle() -> None:
    edges = _package_edges()
    found = [
        " → ".join(cycle) + " (" + ", ".join(edges[a][b] for a, b in pairwise(cycle)) + ")"
        for cycle in _cycles(edges)
    ]
    assert found == [], f"package cycles: {found}"


def test_the_scan_sees_lazy_guarded_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from centralita.runtime import Runtime\n"
        "from ..policy import RouterState\n"
        "def late():\n"
        "    import centralita.outbound\n"
    )
    found = _imports_in(source, ("router", "service"))
    assert {"centralita.runtime", "centralita.outbound", "router.policy"} <= found
