"""Campaign manifests through the admin API: validate, plan, apply, list."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StrictInt, StrictStr

from centralita.campaigns import ApplyResult, PlanResult
from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from core.campaign import Plan, Problem, ValidationResult, render_plan, summarize
from core.campaign.plan import Change
from core.campaign.problems import format_path
from storage.campaigns import StoredCampaign

__all__ = [
    "Applied",
    "CampaignList",
    "CampaignSummary",
    "FieldChange",
    "InvalidManifest",
    "InvalidManifestError",
    "ManifestProblem",
    "ManifestRequest",
    "PlanChange",
    "PlanChanges",
    "Planned",
    "Validation",
]


class ManifestRequest(RequestBody):
    """The JSON form of a manifest body (the YAML text itself is the other form)."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # other fields were always ignored

    manifest: StrictStr = Field(description="The manifest's YAML text.")
    expected_version: StrictInt | None = Field(
        default=None, ge=0, description="Refuse (409) unless the campaign is at this version now."
    )


class ManifestProblem(ResponseBody):
    """One problem of a manifest, where it is and how to fix it."""

    code: str = Field(examples=["unknown_skill", "missing_env"])
    message: str
    line: int | None = Field(description="1-based.")
    column: int | None = Field(description="1-based.")
    path: str = Field(examples=["queues[2].sla.target_pct"])
    hint: str | None
    severity: Literal["error", "warning"]
    text: str = Field(description="FILE:LINE:COLUMN: path: message (hint: …).")

    @classmethod
    def of(cls, problem: Problem) -> ManifestProblem:
        return cls(
            code=problem.code,
            message=problem.message,
            line=problem.line,
            column=problem.column,
            path=format_path(problem.path),
            hint=problem.hint,
            severity=problem.severity,
            text=problem.format(),
        )


class Validation(ResponseBody):
    """Every problem with its line and column; ``ok``: no error (warnings may remain)."""

    ok: bool
    summary: str
    problems: list[ManifestProblem]

    @classmethod
    def of(cls, result: ValidationResult) -> Validation:
        return cls(
            ok=result.ok,
            summary=summarize(result.problems),
            problems=[ManifestProblem.of(p) for p in result.problems],
        )


class InvalidManifestError(ResponseBody):
    code: Literal["invalid_manifest"] = "invalid_manifest"
    message: str


class InvalidManifest(Validation):
    """422: the manifest has errors; every problem, and the error."""

    error: InvalidManifestError

    @classmethod
    def of(cls, result: ValidationResult) -> InvalidManifest:
        validation = Validation.of(result)
        return cls(
            **validation.model_dump(),
            error=InvalidManifestError(message=f"invalid campaign manifest ({validation.summary})"),
        )


class FieldChange(ResponseBody):
    """One field that differs (``null``: absent)."""

    field: str = Field(examples=["sla.answer_within_s"])
    old: Any
    new: Any


class PlanChange(ResponseBody):
    """An item added, changed or removed."""

    action: Literal["add", "change", "remove"]
    kind: str = Field(examples=["queue", "agent", "whatsapp_account"])
    key: str
    fields: list[FieldChange]

    @classmethod
    def of(cls, change: Change) -> PlanChange:
        return cls(
            action=change.action,
            kind=change.kind,
            key=change.key,
            fields=[FieldChange(field=f.field, old=f.old, new=f.new) for f in change.fields],
        )


class PlanChanges(ResponseBody):
    """What applying would change, in a safe order to apply."""

    workspace: str
    campaign: str
    changes: list[PlanChange]

    @classmethod
    def of(cls, plan: Plan) -> PlanChanges:
        return cls(
            workspace=plan.workspace, campaign=plan.campaign, changes=[PlanChange.of(c) for c in plan.changes]
        )


class Planned(ResponseBody):
    """The plan of a manifest against the running configuration."""

    plan: PlanChanges
    text: str = Field(description="The plan as `centralita campaign plan` prints it.")
    current_version: int | None = Field(description="null: the campaign is new.")
    conflicts: list[str] = Field(description="Why a channel address or queue name cannot be taken, one each.")

    @classmethod
    def of(cls, result: PlanResult) -> Planned:
        return cls(
            plan=PlanChanges.of(result.plan),
            text=render_plan(result.plan),
            current_version=result.current_version,
            conflicts=list(result.conflicts),
        )


class Applied(ResponseBody):
    """The applied version and its plan (``applied`` false: nothing to change, no new version)."""

    applied: bool
    workspace: str
    campaign: str
    version: int
    plan: PlanChanges
    text: str
    announced: bool | None = Field(description="Whether the broker took the reload announcement.")

    @classmethod
    def of(cls, result: ApplyResult) -> Applied:
        return cls(
            applied=result.applied,
            workspace=result.plan.workspace,
            campaign=result.plan.campaign,
            version=result.version,
            plan=PlanChanges.of(result.plan),
            text=render_plan(result.plan),
            announced=result.announced,
        )


class CampaignSummary(ResponseBody):
    id: UUID
    name: str
    display_name: str
    version: int
    applied_at: IsoDateTime

    @classmethod
    def of(cls, campaign: StoredCampaign) -> CampaignSummary:
        return cls(
            id=campaign.campaign_id,
            name=campaign.name,
            display_name=campaign.manifest["campaign"]["display_name"],
            version=campaign.version,
            applied_at=campaign.applied_at,
        )


class CampaignList(ResponseBody):
    campaigns: list[CampaignSummary]
