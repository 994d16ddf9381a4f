"""``MediaStore`` implementations: a directory (the default) and memory (tests, benchmarks).

A key is the media row's id (hex): the directory store keeps it at ``<root>/<key[:2]>/<key>``,
written to a temporary file and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from core.media import MediaStore

__all__ = ["DirectoryMediaStore", "MemoryMediaStore"]

_KEY = re.compile(r"^[0-9a-f]{32}$")


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a media key: {key!r}")
    return key


class DirectoryMediaStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def _get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


class MemoryMediaStore:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.files[_checked(key)] = bytes(data)

    async def get(self, key: str) -> bytes | None:
        return self.files.get(_checked(key))

    async def delete(self, key: str) -> None:
        self.files.pop(_checked(key), None)


_: type[MediaStore] = DirectoryMediaStore
__: type[MediaStore] = MemoryMediaStore
