"""The ``MediaStore`` contract, run against every implementation: a directory and memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.ids import new_id
from core.media import MediaStore
from storage.media_files import DirectoryMediaStore, MemoryMediaStore

STORES: dict[str, Callable[[Path], MediaStore]] = {
    "directory": lambda tmp: DirectoryMediaStore(tmp / "media"),
    "memory": lambda tmp: MemoryMediaStore(),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    return STORES[request.param](tmp_path)


async def test_what_is_put_is_got_back_byte_for_byte(store: MediaStore) -> None:
    key, data = new_id().hex, bytes(range(256)) * 40
    await store.put(key, data)
    assert await store.get(key) == data


async def test_a_missing_key_is_none_and_deleting_it_is_harmless(store: MediaStore) -> None:
    key = new_id().hex
    assert await store.get(key) is None
    await store.delete(key)


async def test_a_deleted_file_is_gone_and_others_stay(store: MediaStore) -> None:
    gone, kept = new_id().hex, new_id().hex
    await store.put(gone, b"a")
    await store.put(kept, b"b")
    await store.delete(gone)
    assert await store.get(gone) is None and await store.get(kept) == b"b"


async def test_putting_again_replaces_the_file(store: MediaStore) -> None:
    key = new_id().hex
    await store.put(key, b"first")
    await store.put(key, b"second")
    assert await store.get(key) == b"second"


@pytest.mark.parametrize("key", ["../etc/passwd", "a/b", "", "ABCDEF", "0" * 31])
async def test_a_key_that_is_not_a_media_id_is_refused(store: MediaStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"x")
