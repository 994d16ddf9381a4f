"""The JSON API under ``/api``: one module per area, each exposing ``routes`` (a RouteTableDef).

Modules here are discovered, so an area is added by adding a module.  Conventions:
- every handler starts with ``principal = await require(request, "<least role>")``;
- rows are looked up *within* ``principal.workspace_id``: another workspace's id is a 404;
- errors are raised from ``core.errors`` (the middleware renders ``{"error": {...}}``);
- lists paginate by opaque cursor: ``?limit=`` and ``?cursor=`` in, ``next_cursor`` out.
"""

from __future__ import annotations

import importlib
import pkgutil

from aiohttp import web

__all__ = ["all_routes"]


def all_routes() -> list[web.RouteTableDef]:
    tables = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        routes = getattr(module, "routes", None)
        if isinstance(routes, web.RouteTableDef):
            tables.append(routes)
    return tables
