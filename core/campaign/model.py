"""The campaign manifest: one reviewed YAML file configures a client campaign.

These types describe the file (``apiVersion: centralita/v1``, ``kind: Campaign``).  They are
frozen and reject unknown keys.  Each type checks what it can see alone (a valid time zone, an
interval that ends after it starts); rules that relate parts of the file (a queue naming an
unknown skill, a queue no agent can serve) live in ``core.campaign.rules``.

Secrets are never values here: fields ending in ``_env`` name environment variables.

The accounts under ``channels`` are not declared here: each installed channel adapter contributes
the model of its section (``core.channel.ManifestSection``), and a manifest is validated against
the catalog of installed channels (``core.campaign.channels``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from core.campaign.channels import ChannelName, ChannelsField
from core.campaign.fields import (
    Email,
    HolidayDate,
    Interval,
    Language,
    Proficiency,
    Slug,
    TemplateLanguage,
    TemplateName,
    TimeZoneName,
    Weekday,
)
from core.campaign.retention import Retention
from core.webhooks import valid_pattern

__all__ = [
    "API_VERSION",
    "KIND",
    "Agent",
    "AgentGroup",
    "AgentPerson",
    "AutoReply",
    "BusinessHours",
    "CampaignSettings",
    "Disposition",
    "ExpansionStep",
    "FollowUp",
    "HubLink",
    "Integrations",
    "Manifest",
    "ManifestModel",
    "Overflow",
    "Queue",
    "Retention",
    "Skill",
    "Sla",
    "Survey",
    "SurveyTemplate",
    "Template",
    "TriageMenu",
    "TriageOption",
    "Webhook",
]

API_VERSION = "centralita/v1"
KIND = "Campaign"


class ManifestModel(BaseModel):
    """A part of the manifest: frozen, unknown keys refused (channel account models use it too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_Model = ManifestModel


def _rule(kind: str, message: str, hint: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"hint": hint})


# --------------------------------------------------------------------------- campaign


class CampaignSettings(_Model):
    """The campaign: a line of business inside a workspace."""

    name: Slug = Field(description="Stable identifier of the campaign.", examples=["posgrados-2027"])
    display_name: str = Field(min_length=1, description="Name shown to agents and supervisors.")
    timezone: TimeZoneName = Field(description="Default time zone for business hours and follow-ups.")
    language: Language = Field(default="es", description="Language of customer-facing texts.")


# --------------------------------------------------------------------------- skills and queues


class Skill(_Model):
    name: Slug
    description: str | None = None


class Sla(_Model):
    """Service-level target: ``target_pct`` % of conversations answered within ``answer_within_s``."""

    answer_within_s: int = Field(ge=1, examples=[60])
    target_pct: float = Field(gt=0, le=100, examples=[80])


class BusinessHours(_Model):
    """When a queue is open.  Days not listed are closed; a queue without hours is always open."""

    timezone: TimeZoneName | None = Field(default=None, description="Defaults to the campaign's time zone.")
    weekly: dict[Weekday, list[Interval]] = Field(
        description="Opening intervals per weekday, 'HH:MM-HH:MM', end exclusive.",
        examples=[{"mon": ["08:00-14:00", "15:00-19:00"], "sat": ["09:00-13:00"]}],
    )
    holidays: list[HolidayDate] = Field(default_factory=list, description="Closed all day (local dates).")
    outside_hours_reply: Slug | None = Field(default=None, description="Auto-reply key sent while closed.")


class Overflow(_Model):
    """Move a waiting conversation to another queue."""

    to: Slug = Field(description="Queue that receives the overflow.")
    after_s: int | None = Field(default=None, ge=1, description="Overflow after waiting this long.")
    when_no_agents: bool = Field(
        default=False, description="Overflow at once when no eligible agent is logged in."
    )

    @model_validator(mode="after")
    def _has_trigger(self) -> Overflow:
        if self.after_s is None and not self.when_no_agents:
            raise _rule(
                "overflow_without_trigger",
                "overflow needs a trigger",
                "set 'after_s: N', 'when_no_agents: true', or both",
            )
        return self


class ExpansionStep(_Model):
    """Bullseye step: after ``after_s`` of waiting, required skills need only ``min_proficiency``."""

    after_s: int = Field(ge=1)
    min_proficiency: Proficiency


class Queue(_Model):
    """A routing target: who may serve it, how urgent it is, when it is open, where it overflows."""

    name: Slug
    display_name: str | None = None
    required_skills: dict[Slug, Proficiency] = Field(
        default_factory=dict,
        description="Skill → minimum proficiency an agent needs.",
        examples=[{"maestrias": 6}],
    )
    preferred_skills: list[Slug] = Field(
        default_factory=list, description="Skills that raise an agent's score."
    )
    priority: int = Field(default=5, ge=1, le=10, description="1 (lowest) to 10 (served first).")
    channels: list[ChannelName] = Field(
        min_length=1, description="Channels whose conversations this queue takes."
    )
    sla: Sla | None = None
    business_hours: BusinessHours | None = None
    overflow: Overflow | None = None
    expansion: list[ExpansionStep] = Field(
        default_factory=list, description="Bullseye steps, by increasing after_s."
    )


# --------------------------------------------------------------------------- agents

AgentRole = Literal["agent", "supervisor"]


class AgentPerson(_Model):
    """One named agent."""

    email: Email
    name: str = Field(min_length=1)
    role: AgentRole = "agent"
    skills: dict[Slug, Proficiency] = Field(default_factory=dict, examples=[{"maestrias": 8, "pagos": 5}])
    capacity: dict[ChannelName, Annotated[int, Field(ge=0, le=100)]] = Field(
        description="Conversations at once per channel.", examples=[{"whatsapp": 3, "email": 5}]
    )


class AgentGroup(_Model):
    """``count`` interchangeable agents (e.g. a night shift) created from a name pattern."""

    group: Slug
    count: int = Field(ge=1, le=1000)
    name_pattern: str = Field(description="Must contain {n} (1..count).", examples=["Asesor nocturno {n}"])
    email_pattern: str | None = Field(default=None, examples=["asesor.noche{n}@example.edu.mx"])
    role: AgentRole = "agent"
    skills: dict[Slug, Proficiency] = Field(default_factory=dict)
    capacity: dict[ChannelName, Annotated[int, Field(ge=0, le=100)]]

    @model_validator(mode="after")
    def _patterns_number_members(self) -> AgentGroup:
        if "{n}" not in self.name_pattern:
            raise _rule("pattern_without_n", "name_pattern must contain {n}", "e.g. 'Asesor nocturno {n}'")
        if self.email_pattern is not None and (
            "{n}" not in self.email_pattern or "@" not in self.email_pattern
        ):
            raise _rule(
                "pattern_without_n",
                "email_pattern must be an address containing {n}",
                "e.g. 'asesor{n}@example.com'",
            )
        return self


def _agent_tag(value: Any) -> str:
    if isinstance(value, dict) and "group" in value:
        return "agent_group"
    if isinstance(value, AgentGroup):
        return "agent_group"
    return "individual"


Agent = Annotated[
    Annotated[AgentPerson, Tag("individual")] | Annotated[AgentGroup, Tag("agent_group")],
    Discriminator(_agent_tag),
]


# --------------------------------------------------------------------------- customer-facing texts


class HubLink(_Model):
    """The hub strategy: invite the customer to continue on WhatsApp through a wa.me link."""

    whatsapp_account: Slug = Field(description="WhatsApp account (by name) whose number the link opens.")
    prefill: str | None = Field(
        default=None,
        max_length=500,
        description="Text pre-typed in the customer's WhatsApp.",
        examples=["Hola, vengo de Instagram y quiero información de posgrados"],
    )


class AutoReply(_Model):
    """An automatic message.  ``{wa_link}`` in the text is replaced by the hub link."""

    text: str = Field(min_length=1, description="Text in the campaign's language.")
    translations: dict[Language, str] = Field(
        default_factory=dict, description="Variants in other languages."
    )
    hub: HubLink | None = None


class TriageOption(_Model):
    label: str = Field(min_length=1, examples=["Maestrías"])
    queue: Slug
    keywords: list[str] = Field(default_factory=list, description="Words that also choose this option.")


class TriageMenu(_Model):
    """A numbered menu the customer answers on WhatsApp; options are numbered 1, 2, … in order."""

    prompt: str = Field(
        min_length=1, examples=["¿Sobre qué tema quieres información? Responde con el número:"]
    )
    options: list[TriageOption] = Field(min_length=1, max_length=9)
    invalid_reply: str = Field(
        min_length=1, examples=["No entendí tu respuesta. Responde solo con el número."]
    )
    default_queue: Slug = Field(description="Queue after max_attempts invalid answers.")
    max_attempts: int = Field(default=2, ge=1, le=5)
    accounts: list[Slug] = Field(
        default_factory=list, description="WhatsApp accounts that ask it (default: all)."
    )


class Template(_Model):
    """An approved WhatsApp message template, by purpose."""

    name: TemplateName
    language: TemplateLanguage
    purpose: Slug = Field(examples=["mora_1_30"])
    category: Literal["utility", "marketing", "authentication"]
    parameters: list[Slug] = Field(default_factory=list, description="Names of {{1}}, {{2}}, … in order.")
    body: str | None = Field(default=None, description="Approved body, to check the parameter count.")
    whatsapp_account: Slug | None = Field(default=None, description="Only for this account (default: all).")


class FollowUp(_Model):
    """A follow-up that re-enters routing when due."""

    after_days: int | None = Field(default=None, ge=1, le=365)
    on_field: Literal["date"] | None = Field(default=None, description="Due on the date captured at wrap-up.")
    queue: Slug
    template: TemplateName | None = Field(default=None, description="Template to open the window when due.")

    @model_validator(mode="after")
    def _exactly_one_due(self) -> FollowUp:
        if (self.after_days is None) == (self.on_field is None):
            raise _rule(
                "follow_up_due",
                "a follow-up needs exactly one of after_days or on_field",
                "e.g. 'after_days: 3'",
            )
        return self


class Disposition(_Model):
    """A wrap-up code an agent picks when closing a conversation."""

    code: Slug = Field(examples=["promesa_de_pago"])
    label: str = Field(min_length=1)
    requires: list[Literal["date", "amount", "note"]] = Field(default_factory=list)
    schedules_follow_up: FollowUp | None = None


class SurveyTemplate(_Model):
    """The approved template a survey goes out as when the reply window is closed."""

    name: TemplateName
    language: TemplateLanguage


class Survey(_Model):
    """A CSAT (1–5) or NPS (0–10) survey sent after an agent closes a conversation."""

    kind: Literal["csat", "nps"] = Field(description="csat: a score from 1 to 5; nps: from 0 to 10.")
    question: str = Field(
        min_length=1,
        max_length=1000,
        description="The question the customer is asked.",
        examples=["¿Cómo calificarías la atención que recibiste?"],
    )
    channels: list[ChannelName] = Field(
        default_factory=list, description="The channels whose conversations get it (default: all)."
    )
    delay_s: int = Field(default=60, ge=0, le=86_400, description="Seconds after the close it is sent.")
    template: SurveyTemplate | None = Field(
        default=None,
        description="Sent instead when the reply window is closed (absent: not sent then).",
    )
    button: str = Field(
        default="Calificar",
        min_length=1,
        max_length=20,
        description="The label of the button that opens the options (WhatsApp lists).",
    )
    thanks: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Sent after the score is received."
    )
    answer_within_s: int = Field(
        default=259_200,
        ge=60,
        le=2_592_000,
        description="How long after it is sent an answer is still taken (default 3 days).",
    )
    comment_within_s: int = Field(
        default=600,
        ge=0,
        le=86_400,
        description="How long after the score the customer's next message is kept as its comment.",
    )


# --------------------------------------------------------------------------- integrations


class Webhook(_Model):
    """A webhook subscription: the workspace's events POSTed, signed, to ``url``."""

    name: Slug = Field(description="Stable identifier of the subscription.", examples=["crm-cobranza"])
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where events are POSTed: https, on a public address (checked when applied).",
        examples=["https://crm.example.com/hooks/centralita"],
    )
    events: list[str] = Field(
        min_length=1,
        description="Event types wanted; '*' and '<family>.*' (e.g. 'conversation.*') allowed.",
        examples=[["conversation.*", "disposition.recorded"]],
    )
    secret_env: str = Field(
        pattern=r"^[A-Z][A-Z0-9_]*$",
        description="Environment variable holding the signing secret (never the secret itself).",
        examples=["CRM_WEBHOOK_SECRET"],
    )
    active: bool = Field(default=True, description="Inactive: nothing is queued for it.")

    @model_validator(mode="after")
    def _known_events(self) -> Webhook:
        unknown = [p for p in self.events if not valid_pattern(p)]
        if unknown:
            raise _rule(
                "unknown_event",
                f"unknown event type or pattern {unknown[0]!r}",
                "e.g. 'conversation.*', 'disposition.recorded' or '*' (see docs/integrations.md)",
            )
        scheme, sep, rest = self.url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
            raise _rule(
                "webhook_url", "a webhook url is an absolute https URL", "e.g. https://crm.example.com/hooks"
            )
        return self


class Integrations(_Model):
    """What the workspace's other systems receive."""

    webhooks: list[Webhook] = Field(default_factory=list, description="Signed webhook subscriptions.")

    @model_validator(mode="after")
    def _unique_names(self) -> Integrations:
        names = [w.name for w in self.webhooks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise _rule(
                "duplicate_webhook", f"webhook {twice[0]!r} is declared twice", "give each a name of its own"
            )
        return self


# --------------------------------------------------------------------------- the manifest


class Manifest(_Model):
    """A campaign manifest (``apiVersion: centralita/v1``, ``kind: Campaign``)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="Centralita campaign manifest",
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    api_version: Literal["centralita/v1"] = Field(alias="apiVersion")
    kind: Literal["Campaign"]
    workspace: Slug = Field(description="Workspace (organization or BPO client) the campaign belongs to.")
    campaign: CampaignSettings
    channels: ChannelsField = Field(
        default_factory=dict,  # validated into the catalog's sections model
        validate_default=True,
    )
    skills: list[Skill] = Field(default_factory=list)
    queues: list[Queue] = Field(min_length=1)
    agents: list[Agent] = Field(default_factory=list)
    auto_replies: dict[Slug, AutoReply] = Field(default_factory=dict)
    triage_menu: TriageMenu | None = None
    templates: list[Template] = Field(default_factory=list)
    dispositions: list[Disposition] = Field(default_factory=list)
    retention: Retention | None = Field(
        default=None,
        description="How long personal data is kept, in days per kind (absent: forever).",
    )
    survey: Survey | None = Field(
        default=None, description="The CSAT or NPS survey sent after a close (absent: none)."
    )
    integrations: Integrations | None = Field(
        default=None, description="Webhook subscriptions to the workspace's events (absent: none)."
    )
