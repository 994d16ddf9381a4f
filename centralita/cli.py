"""``centralita``: serve, migrate, normalize, ingest, campaigns, simulate, bench.

Failures print one line (``centralita: error: …``) and exit non-zero; no tracebacks for
conditions a user can fix (a server down, a bad file, a missing variable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.channel import ChannelAdapter
from core.errors import CentralitaError, InvalidInput
from core.events import Ignored, Unsupported
from core.logging import configure_logging, get_logger
from core.settings import Settings

__all__ = ["main"]

log = get_logger("centralita.cli")
Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()
        raise InvalidInput(f"bad CENTRALITA_* environment: {' '.join(first[:3])}") from exc


# ---------------------------------------------------------------- serve
async def _serve(
    settings: Settings,
    *,
    customize: Callable[[Any], None] | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``customize(app)`` adds to the app first (the demo's
    simulator), ``on_listening(url)`` hears where it listens."""
    from aiohttp import web

    from centralita.web.app import create_app
    from centralita.web.server import app_runner

    app = create_app(settings)
    if customize is not None:
        customize(app)
    runner = app_runner(app, settings, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port
        if on_listening is not None:
            on_listening(f"http://{settings.host}:{port}")
        log.info(
            "serving",
            url=f"http://{settings.host}:{port}",
            database=settings.redacted_database_url(),
            broker=settings.redacted_broker_url(),
        )
        print(f"Centralita listening on http://{settings.host}:{port}  (Ctrl-C to stop)", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.port is not None or args.host is not None:
        settings = settings.model_copy(
            update={k: v for k, v in {"port": args.port, "host": args.host}.items() if v is not None}
        )
    if args.migrate:
        _upgrade(settings)
    asyncio.run(_serve(settings))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default: migrate, then serve (see ``centralita.demo``)."""
    from centralita.demo import run_demo

    return run_demo(_settings(), once=args.once, port=args.port)


# ---------------------------------------------------------------- db
def _upgrade(settings: Settings) -> None:
    from storage.database import upgrade_schema

    upgrade_schema(settings.database_url)
    print(f"database at {settings.redacted_database_url()} is at the latest schema", file=sys.stderr)


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    _upgrade(_settings())
    return 0


# ---------------------------------------------------------------- normalize
def _detect_channel(
    path: Path, body: bytes, names: Sequence[str], parsers: Mapping[str, ChannelAdapter]
) -> str:
    """The first adapter that understands the body; ``.eml`` files try mail-shaped adapters first.

    Adapters keep whatever a verified delivery holds (unknown parts become ``unsupported`` or
    ``ignored`` events instead of errors), so "parses" is not "understands": the first adapter
    that finds real traffic wins, and only when none does, the first that parses at all."""
    errors: list[str] = []
    fallback: str | None = None
    for name in names:
        adapter = parsers[name]
        try:
            events = adapter.parse(body, received_at=datetime.now(UTC))
        except CentralitaError as exc:
            errors.append(f"{name}: {exc.message}")
            continue
        if any(not isinstance(event, Ignored | Unsupported) for event in events):
            return name
        fallback = fallback or name
    if fallback is not None:
        return fallback
    raise InvalidInput("no channel recognises this content (" + "; ".join(errors) + ")")


def cmd_normalize(args: argparse.Namespace) -> int:
    from centralita.runtime import adapter_context
    from core.normalized import to_normalized
    from core.registry import load_adapters

    registry = load_adapters(adapter_context(Settings()))
    parsers = dict(registry.items())
    failures = 0
    for name in args.files:
        path = Path(name)
        try:
            body = path.read_bytes()
        except OSError as exc:
            print(f"{path}: error: cannot read: {exc.strerror}", file=sys.stderr)
            failures += 1
            continue
        try:
            if args.channel:
                channel = args.channel
                registry.get(channel)
            else:
                names = registry.names()
                if path.suffix.lower() == ".eml":
                    names.sort(key=lambda n: not registry.get(n).capabilities.threading)
                channel = _detect_channel(path, body, names, parsers)
            events = registry.get(channel).parse(body, received_at=datetime.now(UTC))
        except CentralitaError as exc:
            print(f"{path}: error: {exc.message}", file=sys.stderr)
            failures += 1
            continue
        for event in events:
            print(json.dumps(to_normalized(event), ensure_ascii=False, sort_keys=True))
    return 1 if failures else 0


# ---------------------------------------------------------------- parser
def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the arguments, only what their command needs (a built-in command
    imports no command module, ``centralita token …`` only ``centralita.commands.token``)."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    command = words[0] if words else None
    parser = argparse.ArgumentParser(
        prog="centralita",
        description="Omnichannel contact-center routing engine (WhatsApp, email, Instagram).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server, webhooks and workers")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="migrate, load the example campaign, play a short story, keep serving")
    demo.add_argument("--once", action="store_true", help="exit after the story instead of serving")
    demo.add_argument("--port", type=int, default=None)
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="build or upgrade the schema (alembic upgrade head)")
    up.set_defaults(func=cmd_db_upgrade)

    norm = sub.add_parser("normalize", help="print the normalized events of raw webhook bodies or mails")
    norm.add_argument("files", nargs="+", metavar="FILE")
    norm.add_argument("--channel", default=None, help="skip detection (whatsapp, instagram, email, ...)")
    norm.set_defaults(func=cmd_normalize)

    if command in sub.choices:
        return parser
    from centralita.commands import registrars

    for register in registrars(command):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(Settings().log_level if _env_ok() else "INFO", _log_format())
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CentralitaError as exc:
        print(f"centralita: error: {exc.message}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidInput) else 1
    except KeyboardInterrupt:
        return 130


def _env_ok() -> bool:
    try:
        Settings()
    except ValueError:
        return False
    return True


def _log_format() -> Literal["auto", "console", "json"]:
    try:
        return Settings().log_format
    except ValueError:
        return "auto"


if __name__ == "__main__":
    sys.exit(main())
