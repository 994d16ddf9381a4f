"""Campaign onboarding as code: the manifest, its validation, plan and JSON Schema.

A campaign is one reviewed YAML file (``apiVersion: centralita/v1``, ``kind: Campaign``).
``validate_file`` reports every problem at once as ``FILE:LINE:COLUMN: message (hint: …)``;
``plan(desired, current)`` diffs it against the running configuration exported as a
``Manifest``; ``dump_manifest``/``canonical`` give the exporter a round-tripping form.  Pure:
no I/O beyond reading the file, no database, no broker.  The channel accounts are declared by
the installed adapters (``ChannelCatalog``): no channel is named here.
"""

from core.campaign.canonical import agent_key, canonical, dump_manifest, equivalent, normalize
from core.campaign.channels import (
    ChannelCatalog,
    ChannelName,
    ChannelSections,
    ChannelSpec,
    catalog_from,
    default_catalog,
)
from core.campaign.fields import WEEKDAYS, Language, Weekday, parse_interval_minutes
from core.campaign.links import hub_link, render_auto_reply
from core.campaign.model import (
    API_VERSION,
    KIND,
    Agent,
    AgentGroup,
    AgentPerson,
    AutoReply,
    BusinessHours,
    CampaignSettings,
    Disposition,
    ExpansionStep,
    FollowUp,
    HubLink,
    Integrations,
    Manifest,
    ManifestModel,
    Overflow,
    Queue,
    Skill,
    Sla,
    Survey,
    SurveyTemplate,
    Template,
    TriageMenu,
    TriageOption,
    Webhook,
)
from core.campaign.plan import KIND_ORDER, Change, FieldChange, ItemKind, Plan, kind_order, plan, render_plan
from core.campaign.problems import Problem, Severity, format_problems, summarize
from core.campaign.roster import RosterAgent, expand_agents
from core.campaign.rules import required_env
from core.campaign.schema import manifest_json_schema, render_json_schema, write_json_schema
from core.campaign.triage import match_triage_answer, render_triage_prompt
from core.campaign.validate import (
    ValidationResult,
    check_manifest,
    load_manifest,
    locate_problems,
    parse_manifest,
    validate_file,
    validate_text,
)

__all__ = [
    "API_VERSION",
    "KIND",
    "KIND_ORDER",
    "WEEKDAYS",
    "Agent",
    "AgentGroup",
    "AgentPerson",
    "AutoReply",
    "BusinessHours",
    "CampaignSettings",
    "Change",
    "ChannelCatalog",
    "ChannelName",
    "ChannelSections",
    "ChannelSpec",
    "Disposition",
    "ExpansionStep",
    "FieldChange",
    "FollowUp",
    "HubLink",
    "Integrations",
    "ItemKind",
    "Language",
    "Manifest",
    "ManifestModel",
    "Overflow",
    "Plan",
    "Problem",
    "Queue",
    "RosterAgent",
    "Severity",
    "Skill",
    "Sla",
    "Survey",
    "SurveyTemplate",
    "Template",
    "TriageMenu",
    "TriageOption",
    "ValidationResult",
    "Webhook",
    "Weekday",
    "agent_key",
    "canonical",
    "catalog_from",
    "check_manifest",
    "default_catalog",
    "dump_manifest",
    "equivalent",
    "expand_agents",
    "format_problems",
    "hub_link",
    "kind_order",
    "load_manifest",
    "locate_problems",
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
    "write_json_schema",
]
