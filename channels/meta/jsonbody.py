"""Reading a webhook body as JSON without letting anything but ``InvalidInput`` escape.

Parsers walk provider payloads with these helpers; each one names the JSON path of a field that
is missing or has the wrong type (``entry[0].changes[1].value.messages[0].id``), so a rejected
delivery says exactly where it went wrong.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidInput

__all__ = [
    "MAX_DEPTH",
    "as_list",
    "as_object",
    "fingerprint",
    "load_object",
    "opt_bool",
    "opt_list",
    "opt_object",
    "opt_str",
    "req_list",
    "req_object",
    "req_str",
    "try_load",
    "unix_time",
]

MAX_DEPTH = 64  # real Meta payloads nest about ten levels


def _check_tree(root: Any) -> None:
    """Iteratively: depth within ``MAX_DEPTH`` and every string encodable (no lone surrogates)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels", field="body")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("the body holds a string that is not valid Unicode", field="body") from exc


def try_load(body: bytes) -> Any:
    """The decoded JSON, or raise ``InvalidInput`` (not JSON, not UTF-8, too deep, too big a number)."""
    if not body:
        raise InvalidInput("the body is empty", field="body")
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise InvalidInput("the body nests too deeply to be read", field="body") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from exc
    _check_tree(data)
    return data


def load_object(body: bytes) -> dict[str, Any]:
    return as_object(try_load(body), "body")


def fingerprint(value: Any) -> str:
    """A stable short hash of a JSON value (for events whose provider gives them no id)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{path} must be an object, not {_kind(value)}", field=path)
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{path} must be an array, not {_kind(value)}", field=path)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and path != "body" else key


def req_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    where = _join(path, key)
    if key not in parent:
        raise InvalidInput(f"{where} is required", field=where)
    return as_object(parent[key], where)


def opt_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return None if value is None else as_object(value, _join(path, key))


def req_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    where = _join(path, key)
    if key not in parent:
        raise InvalidInput(f"{where} is required", field=where)
    return as_list(parent[key], where)


def opt_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    return [] if value is None else as_list(value, _join(path, key))


def req_str(parent: dict[str, Any], key: str, path: str) -> str:
    where = _join(path, key)
    value = parent.get(key)
    if value is None:
        raise InvalidInput(f"{where} is required", field=where)
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, not {_kind(value)}", field=where)
    if not value:
        raise InvalidInput(f"{where} must not be empty", field=where)
    return value


def opt_str(parent: dict[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{_join(path, key)} must be a string, not {_kind(value)}", field=_join(path, key))
    return value


def opt_bool(parent: dict[str, Any], key: str, path: str) -> bool:
    value = parent.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{_join(path, key)} must be true or false", field=_join(path, key))
    return value


_MS_THRESHOLD = 100_000_000_000  # values above this are milliseconds (year 5138 in seconds)


def unix_time(value: Any, path: str, *, millis: bool | None = None) -> datetime:
    """Unix seconds (``"1739321024"`` or ``1739321024``) or milliseconds → aware UTC datetime.

    ``millis=None`` decides by magnitude (Instagram sends milliseconds in ``messaging`` and
    seconds in the ``changes`` shape).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{path} must be a Unix timestamp, not {_kind(value)}", field=path)
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 20:
            raise InvalidInput(f"{path} must be a Unix timestamp in digits", field=path)
        number = int(value)
    else:
        number = value
    if number < 0:
        raise InvalidInput(f"{path} must not be negative", field=path)
    is_ms = number >= _MS_THRESHOLD if millis is None else millis
    try:
        return datetime.fromtimestamp(number / 1000 if is_ms else number, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is out of range for a timestamp", field=path) from exc


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
