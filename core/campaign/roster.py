"""The agents a manifest declares, one per person: groups expanded into their members."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.campaign.model import AgentGroup, Manifest

__all__ = ["RosterAgent", "expand_agents"]


@dataclass(frozen=True)
class RosterAgent:
    """One agent to create or update.  ``key`` is stable across applies: the email, or
    ``group:<name>:<n>`` for a group member without an email pattern."""

    key: str
    name: str
    email: str | None
    role: str
    skills: Mapping[str, int]
    capacity: Mapping[str, int]  # channel name → conversations at once
    group: str | None = None


def expand_agents(manifest: Manifest) -> list[RosterAgent]:
    """Every agent of the manifest, in file order; a group of ``count`` gives members 1..count."""
    roster: list[RosterAgent] = []
    for entry in manifest.agents:
        if isinstance(entry, AgentGroup):
            for n in range(1, entry.count + 1):
                email = entry.email_pattern.replace("{n}", str(n)).lower() if entry.email_pattern else None
                roster.append(
                    RosterAgent(
                        key=email or f"group:{entry.group}:{n}",
                        name=entry.name_pattern.replace("{n}", str(n)),
                        email=email,
                        role=entry.role,
                        skills=dict(entry.skills),
                        capacity=dict(entry.capacity),
                        group=entry.group,
                    )
                )
        else:
            roster.append(
                RosterAgent(
                    key=entry.email,
                    name=entry.name,
                    email=entry.email,
                    role=entry.role,
                    skills=dict(entry.skills),
                    capacity=dict(entry.capacity),
                )
            )
    return roster
