"""The channels a manifest may declare: whatever adapters are installed, described as data.

A manifest's ``channels.<name>`` sections, the channel names in ``queues[].channels`` and in
agents' ``capacity`` are checked against a ``ChannelCatalog``: one ``ChannelSpec`` per installed
adapter that declares a ``ManifestSection`` (``core.channel``).  The campaign domain names no
channel: the triage menu is asked on channels whose capabilities say ``triage_menu``, hub replies
link to ``hub_link_target`` channels, templates belong to channels with ``templates``.

Validation takes the catalog from the pydantic context (``{"channels": catalog}``); without one
it uses the catalog of the adapters installed in this environment (``core.registry``).  The
validated ``Manifest.channels`` is an instance of the catalog's sections model, so it keeps the
specs of its channels (``manifest.channels.catalog``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    SerializeAsAny,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticKnownError

from core.channel import Capabilities, ManifestAccount, ManifestSection

__all__ = [
    "ChannelCatalog",
    "ChannelGroup",
    "ChannelName",
    "ChannelSections",
    "ChannelSpec",
    "ChannelsField",
    "catalog_from",
    "default_catalog",
    "schema_catalog",
]


@dataclass(frozen=True, eq=False)
class ChannelSpec:
    """One installed channel as a manifest sees it: its name, capabilities and manifest section."""

    name: str
    capabilities: Capabilities
    section: ManifestSection

    @property
    def display_name(self) -> str:
        return self.capabilities.display_name or self.name

    @property
    def plan_kind(self) -> str:
        return self.section.plan_kind or f"{self.name}_account"


class ChannelCatalog:
    """The channels a manifest may declare, in section order.  Compared by identity."""

    def __init__(self, specs: Iterable[ChannelSpec]):
        self.specs: tuple[ChannelSpec, ...] = tuple(sorted(specs, key=lambda s: (s.section.order, s.name)))
        self._by_name = {spec.name: spec for spec in self.specs}

    @classmethod
    def of(cls, adapters: Iterable[Any]) -> ChannelCatalog:
        """From adapter classes (or instances): those with a ``manifest`` section."""
        return cls(
            ChannelSpec(adapter.name, adapter.capabilities, adapter.manifest)
            for adapter in adapters
            if getattr(adapter, "manifest", None) is not None
        )

    def __iter__(self) -> Iterator[ChannelSpec]:
        return iter(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"ChannelCatalog({', '.join(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str) -> ChannelSpec | None:
        return self._by_name.get(name)

    def where(self, wanted: Callable[[Capabilities], bool]) -> tuple[ChannelSpec, ...]:
        """The channels whose capabilities satisfy ``wanted`` (e.g. ``lambda c: c.triage_menu``)."""
        return tuple(spec for spec in self.specs if wanted(spec.capabilities))

    def that(self, wanted: Callable[[Capabilities], bool], what: str) -> ChannelGroup:
        """``where`` as a group that messages can name; ``what`` names it when it is empty."""
        return ChannelGroup(self.where(wanted), what)

    @cached_property
    def sections_model(self) -> type[ChannelSections]:
        """The pydantic model of ``channels``: one list of accounts per channel, unknown keys refused."""
        fields: dict[str, Any] = {
            spec.name: (list[spec.section.account_model], Field(default_factory=list))  # type: ignore[name-defined]
            for spec in self.specs
        }
        model = create_model(
            "Channels", __base__=ChannelSections, __doc__="The campaign's channel accounts.", **fields
        )
        model.catalog = self
        return model


@dataclass(frozen=True, eq=False)
class ChannelGroup:
    """The channels with one capability, as messages about them name them."""

    specs: tuple[ChannelSpec, ...]
    what: str  # e.g. "hub-link": "hub-link channel" when no installed channel has the capability

    @property
    def names(self) -> set[str]:
        return {spec.name for spec in self.specs}

    @property
    def label(self) -> str:
        """``WhatsApp`` (``Instagram or Email`` for two, ``A, B or C`` for three)."""
        return _either([spec.display_name for spec in self.specs]) or f"{self.what} channel"

    @property
    def sections(self) -> str:
        """Where their accounts are declared: ``channels.whatsapp``."""
        return "' or '".join(f"channels.{spec.name}" for spec in self.specs) or "channels"

    @property
    def code(self) -> str:
        """The channel's name in a problem code (``triage_without_whatsapp``), or ``channel``."""
        return self.specs[0].name if len(self.specs) == 1 else "channel"


def _either(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


class ChannelSections(BaseModel):
    """``Manifest.channels``: the accounts of each channel of ``catalog`` (see ``sections_model``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    catalog: ClassVar[ChannelCatalog]

    def accounts(self, channel: str) -> Sequence[ManifestAccount]:
        return cast(Sequence[ManifestAccount], getattr(self, channel, None) or ())

    def sections(self) -> list[tuple[ChannelSpec, Sequence[ManifestAccount]]]:
        """Each channel of the catalog with its accounts (empty sections included)."""
        return [(spec, self.accounts(spec.name)) for spec in self.catalog]

    def all_accounts(self) -> list[tuple[ChannelSpec, int, ManifestAccount]]:
        """Every account with its channel and its index in the section."""
        return [
            (spec, index, account)
            for spec, accounts in self.sections()
            for index, account in enumerate(accounts)
        ]

    def find(self, name: str) -> tuple[ChannelSpec, ManifestAccount] | None:
        """The account called ``name`` (the manifest's name for it) and its channel."""
        for spec, _, account in self.all_accounts():
            if account.name == name:
                return spec, account
        return None


_installed: list[ChannelCatalog] = []


def default_catalog() -> ChannelCatalog:
    """The channels of the adapters installed here (``centralita.channels`` entry points), once."""
    if not _installed:
        from core.registry import installed_catalog  # the entry points are read only when needed

        _installed.append(installed_catalog())
    return _installed[0]


def catalog_from(context: Mapping[str, Any] | None) -> ChannelCatalog:
    """The catalog of a validation context (``{"channels": catalog}``), else the installed one."""
    found = (context or {}).get("channels")
    return found if isinstance(found, ChannelCatalog) else default_catalog()


_SCHEMA_CATALOG: contextvars.ContextVar[ChannelCatalog | None] = contextvars.ContextVar(
    "campaign_schema_catalog", default=None
)


class schema_catalog:
    """While the JSON Schema is generated, the channels it lists."""

    def __init__(self, catalog: ChannelCatalog):
        self._catalog = catalog
        self._token: contextvars.Token[ChannelCatalog | None] | None = None

    def __enter__(self) -> ChannelCatalog:
        self._token = _SCHEMA_CATALOG.set(self._catalog)
        return self._catalog

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _SCHEMA_CATALOG.reset(self._token)


def _schema_channels() -> ChannelCatalog:
    return _SCHEMA_CATALOG.get() or default_catalog()


def _expected(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _channel_name(value: Any, info: ValidationInfo) -> str:
    names = catalog_from(info.context).names
    if isinstance(value, str) and value in names:
        return value
    raise PydanticKnownError("literal_error", {"expected": _expected(names)})


class _ChannelNameSchema:
    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"enum": list(_schema_channels().names), "type": "string"}


ChannelName = Annotated[str, PlainValidator(_channel_name), _ChannelNameSchema]
"""The name of an installed channel (``whatsapp``, ``email``, …)."""


def _sections(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> ChannelSections:
    model = catalog_from(info.context).sections_model
    if isinstance(value, model):
        return value
    if isinstance(value, ChannelSections):
        value = value.model_dump()
    return model.model_validate(value, context=info.context)


class _SectionsSchema:
    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_schema_channels().sections_model.__pydantic_core_schema__)


ChannelsField = Annotated[SerializeAsAny[ChannelSections], WrapValidator(_sections), _SectionsSchema]
"""The type of ``Manifest.channels``: validated by the catalog's sections model."""
