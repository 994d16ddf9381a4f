"""Bases and the shapes every area shares: errors, acceptances, pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from router.wire import RouterInput

__all__ = ["Accepted", "ErrorDetail", "ErrorResponse", "IsoDateTime", "RequestBody", "ResponseBody"]

IsoDateTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time on the wire as ``datetime.isoformat()`` writes it (``+00:00``, not pydantic's ``Z``):
the format the handlers emitted before they had models."""


class RequestBody(BaseModel):
    """A request body: unknown fields are refused (400 naming the field), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseBody(BaseModel):
    """A response body: exactly the fields declared (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(ResponseBody):
    code: str = Field(examples=["invalid_input"])
    message: str
    field: str | None = Field(
        default=None, description="Where: a body field (JSON path), parameter or header."
    )
    details: dict[str, Any] | None = None


class ErrorResponse(ResponseBody):
    """Every error: ``{"error": {"code", "message", "field"?, "details"?}}``."""

    error: ErrorDetail


class Accepted(ResponseBody):
    """202: the request became a message to the workspace's router, which applies it."""

    status: Literal["accepted"] = "accepted"
    router_input: RouterInput = Field(description="The message published to route.<workspace_id>.")
