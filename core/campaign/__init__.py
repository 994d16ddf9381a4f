"""Campaign onboarding as code: the manifest, its validation, plan and JSON Schema.

A campaign is one reviewed YAML file (``apiVersion: centralita/v1``, ``kind: Campaign``).
``validate_file`` reports every problem at once as ``FILE:LINE:COLUMN: message (hint: …)``;
``plan(desired, current)`` diffs it against the running configuration exported as a
``Manifest``; ``dump_manifest``/``canonical`` give the exporter a round-tripping form.  Pure:
no I/O beyond reading the file, no database, no broker.
"""

from core.campaign.canonical import agent_key, canonical, dump_manifest, equivalent, normalize
from core.campaign.fields import (
    CHANNEL_KINDS,
    HUB_CHANNEL,
    MENU_CHANNEL,
    WEEKDAYS,
    ChannelKind,
    Language,
    Weekday,
    parse_interval_minutes,
)
from core.campaign.links import hub_link, render_auto_reply, wa_me_link
from core.campaign.model import (
    API_VERSION,
    KIND,
    Agent,
    AgentGroup,
    AgentPerson,
    AutoReply,
    BusinessHours,
    CampaignSettings,
    Channels,
    Disposition,
    ExpansionStep,
    FollowUp,
    HubLink,
    InstagramAccount,
    Mailbox,
    Manifest,
    Overflow,
    Queue,
    Skill,
    Sla,
    Template,
    TriageMenu,
    TriageOption,
    WhatsAppAccount,
)
from core.campaign.plan import KIND_ORDER, Change, FieldChange, ItemKind, Plan, plan, render_plan
from core.campaign.problems import Problem, format_problems, summarize
from core.campaign.roster import RosterAgent, expand_agents
from core.campaign.rules import required_env
from core.campaign.schema import manifest_json_schema, render_json_schema, write_json_schema
from core.campaign.triage import match_triage_answer, render_triage_prompt
from core.campaign.validate import (
    ValidationResult,
    check_manifest,
    load_manifest,
    parse_manifest,
    validate_file,
    validate_text,
)

__all__ = [
    "API_VERSION",
    "CHANNEL_KINDS",
    "HUB_CHANNEL",
    "KIND",
    "KIND_ORDER",
    "MENU_CHANNEL",
    "WEEKDAYS",
    "Agent",
    "AgentGroup",
    "AgentPerson",
    "AutoReply",
    "BusinessHours",
    "CampaignSettings",
    "Change",
    "ChannelKind",
    "Channels",
    "Disposition",
    "ExpansionStep",
    "FieldChange",
    "FollowUp",
    "HubLink",
    "InstagramAccount",
    "ItemKind",
    "Language",
    "Mailbox",
    "Manifest",
    "Overflow",
    "Plan",
    "Problem",
    "Queue",
    "RosterAgent",
    "Skill",
    "Sla",
    "Template",
    "TriageMenu",
    "TriageOption",
    "ValidationResult",
    "Weekday",
    "WhatsAppAccount",
    "agent_key",
    "canonical",
    "check_manifest",
    "dump_manifest",
    "equivalent",
    "expand_agents",
    "format_problems",
    "hub_link",
    "load_manifest",
    "manifest_json_schema",
    "match_triage_answer",
    "normalize",
    "parse_interval_minutes",
    "parse_manifest",
    "plan",
    "render_auto_reply",
    "render_json_schema",
    "render_plan",
    "render_triage_prompt",
    "required_env",
    "summarize",
    "validate_file",
    "validate_text",
    "wa_me_link",
    "write_json_schema",
]
