"""The demo's customer simulator: what a simulated customer sends, and their thread."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody

__all__ = ["SimulatedMessage", "SimulatedThread", "SimulatorSend"]


class SimulatorSend(RequestBody):
    channel: Literal["whatsapp", "instagram"]
    customer: str = Field(
        min_length=3,
        max_length=40,
        pattern=r"^[0-9]+$",
        description="WhatsApp: the phone in international digits (5215512345678); Instagram: an IGSID.",
    )
    name: str = Field(default="Cliente de prueba", min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=4096)


class SimulatedMessage(ResponseBody):
    side: Literal["customer", "business"]
    text: str
    at: IsoDateTime
    state: str | None = Field(description="A business message's delivery state: sent, delivered, read.")


class SimulatedThread(ResponseBody):
    channel: str
    customer: str
    messages: list[SimulatedMessage] = Field(description="Oldest first.")
