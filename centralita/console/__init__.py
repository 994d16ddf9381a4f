"""The console: the agents' desk and the supervisors' wall, in the browser.

Static files served by the same aiohttp application as the API (``/console/…``): one HTML shell,
an ES module and a style sheet, no build step and no Node (``docs/architecture.md`` says why).
The page talks to the JSON API and to ``/ws/agent`` with the session cookie of
``/api/auth/sign-in`` — nothing here reads the database or the broker.  ``/`` redirects to the
console.  Every page goes out with a Content-Security-Policy that allows this origin only (no
inline script, no third party), ``X-Frame-Options: DENY`` and ``no-store``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from centralita.web.spec import documented

__all__ = ["STATIC", "page", "page_headers", "setup"]

STATIC = Path(str(resources.files(__package__) / "static"))

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


def page_headers(response: web.StreamResponse) -> web.StreamResponse:
    """The console's security headers on a page or file."""
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


_HTML = {"type": "string", "contentMediaType": "text/html"}


@documented(None, {302: ("To the console.", None)})
async def root(request: web.Request) -> web.StreamResponse:
    """Open the console."""
    raise web.HTTPFound("/console/")


def _files() -> dict[str, tuple[bytes, str]]:
    """The console's files, read once (a few tens of kilobytes)."""
    return {
        path.name: (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(STATIC.iterdir())
        if path.is_file() and path.suffix in _TYPES
    }


_FILES = web.AppKey("console_files", dict[str, tuple[bytes, str]])


def page(request: web.Request, name: str) -> web.StreamResponse:
    """One of the console's HTML pages, with the console's headers."""
    body, kind = request.app[_FILES][name]
    return page_headers(web.Response(body=body, content_type=kind, charset="utf-8"))


@documented(None, {200: ("The console's page.", _HTML)}, response_type="text/html")
async def shell(request: web.Request) -> web.StreamResponse:
    """The console's shell: the script decides which view (sign-in, desk, wall) to show."""
    return page(request, "index.html")


@documented(
    None,
    {200: ("A script, style sheet or picture of the console.", {"type": "string"})},
    response_type="text/javascript",
)
async def asset(request: web.Request) -> web.StreamResponse:
    """A file of the console."""
    found = request.app[_FILES].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(reason="no such file")
    body, kind = found
    return page_headers(web.Response(body=body, content_type=kind, charset="utf-8"))


def setup(app: web.Application) -> None:
    app[_FILES] = _files()
    app.router.add_get("/", root)
    app.router.add_get("/console", root)
    app.router.add_get("/console/", shell)
    app.router.add_get("/console/invitation", shell)
    app.router.add_get("/console/static/{name}", asset)
