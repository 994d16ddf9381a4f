"""Console passwords: argon2id hashes (argon2-cffi), checked off the event loop.

A password is 10 to 200 characters (NIST SP 800-63B: length, not composition rules).  A sign-in
for an email nobody has still verifies against a fixed hash, so the answer takes as long as
a wrong password and does not tell which emails exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InvalidInput

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "check_strength", "hash_password", "verify_password"]

MIN_LENGTH = 10
MAX_LENGTH = 200

_HASHER = PasswordHasher()
_NOBODY = _HASHER.hash("nobody has this password; it only takes the time a real check takes")


def check_strength(password: str, *, field: str = "password") -> None:
    """``InvalidInput`` naming ``field`` unless the password is long enough (and not absurdly long)."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password has at least {MIN_LENGTH} characters", field=field)
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_LENGTH} characters", field=field)
    if not password.strip():
        raise InvalidInput("a password is more than spaces", field=field)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _NOBODY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash (``None``: no password set — always False,
    after the same work)."""
    return await asyncio.to_thread(_verify, stored, password)
