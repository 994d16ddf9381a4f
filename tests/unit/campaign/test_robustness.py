"""Whatever the file holds, validation answers with problems, never with an exception."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.campaign import validate_text

from .conftest import BASE, ENV

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gets_problems_not_an_exception(text: str) -> None:
    result = validate_text(text, "fuzz.yaml", env=ENV)
    assert result.manifest is None or not result.errors


@settings(max_examples=150, deadline=None)
@given(section=st.sampled_from(sorted(BASE)), value=_values)
def test_any_value_in_any_section_gets_problems_not_an_exception(section: str, value: Any) -> None:
    data = dict(BASE)
    data[section] = value
    result = validate_text(yaml.safe_dump(data, allow_unicode=True), "fuzz.yaml", env=ENV)
    assert all(p.line is not None for p in result.problems)


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from([*sorted(BASE["queues"][0]), "preferred_skills", "expansion", "priority"]),
    value=_values,
)
def test_any_value_in_a_queue_gets_problems_not_an_exception(key: str, value: Any) -> None:
    data = copy.deepcopy(BASE)
    data["queues"][0][key] = value
    validate_text(yaml.safe_dump(data, allow_unicode=True), "fuzz.yaml", env=ENV)


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(["skills", "capacity", "role", "email", "group", "count", "name_pattern"]),
    value=_values,
)
def test_any_value_in_an_agent_gets_problems_not_an_exception(key: str, value: Any) -> None:
    data = copy.deepcopy(BASE)
    data["agents"][0][key] = value
    validate_text(yaml.safe_dump(data, allow_unicode=True), "fuzz.yaml", env=ENV)
