"""Channel adapters found by name through the ``centralita.channels`` entry-point group.

``installed_catalog()`` describes the installed adapters' manifest sections and capabilities
(read from the adapter classes, nothing is constructed) for the campaign manifest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from core.campaign.channels import ChannelCatalog
from core.channel import AdapterContext, ChannelAdapter
from core.errors import ChannelError, UnknownChannel

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterRegistry",
    "available_channels",
    "installed_catalog",
    "load_adapter_class",
    "load_adapters",
]

ENTRY_POINT_GROUP = "centralita.channels"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_channels() -> list[str]:
    return sorted(_entry_points())


class AdapterRegistry:
    """The adapters this process runs, by channel name."""

    def __init__(self, adapters: Mapping[str, ChannelAdapter]):
        self._adapters = dict(adapters)

    def get(self, name: str) -> ChannelAdapter:
        try:
            return self._adapters[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._adapters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self._adapters)) or "none"
            raise UnknownChannel(
                f"unknown channel {name!r}{hint} (known: {known})", field="channel"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def __iter__(self) -> Iterator[ChannelAdapter]:
        return iter(self._adapters.values())

    def items(self) -> Iterable[tuple[str, ChannelAdapter]]:
        return self._adapters.items()

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()


def load_adapter_class(name: str, eps: Mapping[str, EntryPoint] | None = None) -> Any:
    """The adapter class registered as ``name`` (not constructed); ``cls(context)`` is the adapter."""
    eps = _entry_points() if eps is None else eps
    if name not in eps:
        close = difflib.get_close_matches(name, list(eps), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownChannel(f"no channel adapter named {name!r}{hint}", field="channel")
    try:
        cls = eps[name].load()
    except ImportError as exc:
        raise ChannelError(
            f"the channel adapter {name!r} ({eps[name].value}) cannot be loaded: {exc}", field="channel"
        ) from exc
    return cls


def load_adapters(context: AdapterContext, only: Iterable[str] | None = None) -> AdapterRegistry:
    eps = _entry_points()
    wanted = list(only) if only is not None else sorted(eps)
    adapters: dict[str, ChannelAdapter] = {name: load_adapter_class(name, eps)(context) for name in wanted}
    return AdapterRegistry(adapters)


def installed_catalog() -> ChannelCatalog:
    """The manifest sections of every installed adapter that declares one."""
    eps = _entry_points()
    return ChannelCatalog.of(load_adapter_class(name, eps) for name in sorted(eps))
