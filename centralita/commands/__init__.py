"""CLI subcommands beyond the basics: one module per command group, each with ``register(sub)``.

``register`` adds its parser(s) to the ``centralita`` subparsers and sets ``func`` to a callable
``(argparse.Namespace) -> int``.  Raise ``core.errors`` for failures a user can fix: the CLI
prints them on one line.  A module registers the command of its own name (``token.py``:
``centralita token …``), so running one command imports only its module; ``--help`` and an
unknown command import them all.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable

__all__ = ["registrars"]


def registrars(command: str | None = None) -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """The ``register`` of every command module; of ``command``'s module alone when there is one."""
    modules = [i.name for i in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)]
    modules = [name for name in modules if not name.startswith("_")]
    if command in modules:
        modules = [command]
    found = []
    for name in modules:
        module = importlib.import_module(f"{__name__}.{name}")
        register = getattr(module, "register", None)
        if callable(register):
            found.append(register)
    return found
