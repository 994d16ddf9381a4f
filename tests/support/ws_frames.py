"""Every frame an e2e test's agent socket receives is checked against the frame models: a frame
``ServerFrame`` does not describe — an unknown ``type``, a field its model lacks or misses, a
value that does not round-trip — fails the test that received it."""

from __future__ import annotations

import json

from pydantic import ValidationError

from centralita.schemas.ws import parse_server_frame

__all__ = ["unmodelled"]


def unmodelled(text: str) -> str | None:
    """Why the text frame ``text`` is not exactly a ``ServerFrame`` (``None``: it is)."""
    try:
        frame = parse_server_frame(text)
    except ValidationError as exc:
        return f"{text[:200]}: {exc.errors(include_url=False)}"
    if frame.model_dump(mode="json") != json.loads(text):
        return f"{text[:200]}: differs from its model's dump {frame.model_dump(mode='json')}"
    return None
