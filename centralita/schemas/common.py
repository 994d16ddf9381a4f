"""Bases and the shapes every area shares: errors, acceptances, pages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.wire import RouterInput

__all__ = ["Accepted", "ErrorDetail", "ErrorResponse", "RequestBody", "ResponseBody"]


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
