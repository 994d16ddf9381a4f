"""Dependencies point inward: the decision cores import no web, broker or ORM library."""

from __future__ import annotations

import ast
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
