"""CLI subcommands beyond the basics: one module per command group, each with ``register(sub)``.

``register`` adds its parser(s) to the ``centralita`` subparsers and sets ``func`` to a callable
``(argparse.Namespace) -> int``.  Raise ``core.errors`` for failures a user can fix: the CLI
prints them on one line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable

__all__ = ["registrars"]


def registrars() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            found.append(register)
    return found
