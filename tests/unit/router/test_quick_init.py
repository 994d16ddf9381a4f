"""The router's events and commands keep the constructor a frozen dataclass would give them:
same signature, same defaults and factories, the same values, and still immutable."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from router.policy import commands, events
from router.policy.frozen import quick_init


def _classes() -> list[type[Any]]:
    found = []
    for module in (commands, events):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                found.append(value)
    return found


def _reference(cls: type[Any]) -> type[Any]:
    """The same fields declared again under a plain frozen dataclass, for its generated __init__."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__annotations__": {}}
    for f in dataclasses.fields(cls):
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = field(default=f.default, default_factory=f.default_factory, kw_only=f.kw_only)
    return dataclass(frozen=params.frozen, slots=True)(type(cls.__name__, (), namespace))


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_event_and_command_has_the_signature_of_its_dataclass(cls: type[Any]) -> None:
    assert cls.__init__.__code__.co_filename == "<string>"  # quick_init's, not dataclasses'
    mine = inspect.signature(cls)
    reference = inspect.signature(_reference(cls))
    assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == [
        (p.name, p.kind, p.default) for p in reference.parameters.values()
    ]


@quick_init
@dataclass(frozen=True, slots=True)
class _Mixed:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: float = field(default=1.5, kw_only=True)
    e: int = field(kw_only=True, default=0)


@dataclass(frozen=True, slots=True)
class _MixedReference:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)
    d: float = field(default=1.5, kw_only=True)
    e: int = field(kw_only=True, default=0)


def test_positional_keyword_default_and_factory_fields_are_set_as_a_dataclass_sets_them() -> None:
    for args, kwargs in [((1,), {}), ((1, "x", [2]), {"d": 2.5, "e": 3}), ((), {"a": 4, "c": [5]})]:
        mine, reference = _Mixed(*args, **kwargs), _MixedReference(*args, **kwargs)
        assert dataclasses.astuple(mine) == dataclasses.astuple(reference)
    assert _Mixed(1).c is not _Mixed(1).c  # a fresh default each time
    assert _Mixed(1, "x") == _Mixed(1, "x") != _Mixed(2, "x")
    assert dataclasses.replace(_Mixed(1), d=9.0) == _Mixed(1, d=9.0)
    with pytest.raises(TypeError):
        _Mixed(1, "b", [], 2.0)  # type: ignore[misc]  # d is keyword-only
    with pytest.raises(TypeError):
        _Mixed()  # type: ignore[call-arg]


def test_instances_stay_frozen() -> None:
    offer_accepted = events.OfferAccepted(offer_id=None)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        offer_accepted.offer_id = None  # type: ignore[misc]


def test_what_it_cannot_copy_is_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    for cls in (Mutable, Checked, Unslotted):
        with pytest.raises(TypeError):
            quick_init(cls)
