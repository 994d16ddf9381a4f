"""What a route's handler declares about itself for the OpenAPI document.

Each handler carries one ``Operation`` (``@documented(...)`` under its ``@routes.<method>``): the
least role, the request body model, the query parameters and, per status, a description and the
response model.  ``centralita.web.api.openapi`` walks the live routes and builds the document from
these declarations and the models' JSON Schemas; nothing about a route is written twice.

Errors common to every API operation are added by the builder (401/403 with a role, 404 with
path parameters, 400 with a body or query, 408/413/415 with a body, 500 and 503 everywhere), so
an operation lists only the statuses particular to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

__all__ = ["Operation", "Param", "Role", "Schema", "documented", "operation_of"]

Schema = dict[str, Any]
Role = Literal["agent", "supervisor", "admin"]
# A response or request shape: a pydantic model, a raw JSON Schema (text bodies), or nothing.
Shape = type[BaseModel] | Schema | None

H = TypeVar("H", bound=Callable[..., Any])

_ATTRIBUTE = "__operation__"


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or header) parameter; ``schema`` is a JSON Schema or a Python type."""

    name: str
    description: str
    schema: Schema | type | Any = str
    where: str = "query"
    required: bool = False

    def json_schema(self) -> Schema:
        if isinstance(self.schema, dict):
            return self.schema
        return TypeAdapter(self.schema).json_schema()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required,
            "description": self.description,
            "schema": self.json_schema(),
        }


@dataclass(frozen=True, slots=True)
class Operation:
    """One route's declaration.

    ``role``: the least role (``None``: no bearer token — webhooks, probes).  ``responses``:
    status → (description, shape).  ``body``: the request body's model (or a raw schema with
    ``body_types`` for non-JSON bodies such as a signed webhook or a YAML manifest)."""

    role: Role | None
    responses: Mapping[int, tuple[str, Shape]]
    body: Shape = None
    body_types: tuple[str, ...] = ("application/json",)
    body_required: bool = True
    query: tuple[Param, ...] = ()
    summary: str | None = None  # when the handler has no docstring
    description: str | None = None
    response_type: str | tuple[str, ...] = "application/json"  # several: one answer, chosen by a parameter
    authorization: str | None = None  # who may call, when the least role does not say it all
    extra_errors: Mapping[int, str] = field(default_factory=dict)  # status → when (Error body)

    @property
    def response_types(self) -> tuple[str, ...]:
        return self.response_type if isinstance(self.response_type, tuple) else (self.response_type,)


def documented(
    role: Role | None,
    responses: Mapping[int, tuple[str, Shape]],
    **options: Any,
) -> Callable[[H], H]:
    """Attach an ``Operation`` to a handler (place it under ``@routes.get(...)``)."""

    operation = Operation(role, responses, **options)

    def mark(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, operation)
        return handler

    return mark


def operation_of(handler: Any) -> Operation | None:
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None
