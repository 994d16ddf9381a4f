"""Rules that relate parts of a manifest to each other.

They run over a ``ManifestView``: the items that passed schema validation, each with its path,
plus the names declared anywhere in the file (read leniently, so that one broken skill entry does
not make every queue that uses it report an unknown skill).  The view of a valid ``Manifest`` is
complete; a file with schema errors still gets these rules on the parts that parsed, so a person
sees every error at once.

No rule names a channel: the view's ``catalog`` says which channels ask the triage menu
(``triage_menu``), which ones hub replies link to (``hub_link_target``), which have templates,
each channel's unique address field and its secret fields.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.campaign.channels import ChannelCatalog, ChannelGroup, ChannelSpec, default_catalog
from core.campaign.fields import parse_interval_minutes
from core.campaign.links import PLACEHOLDERS, placeholders
from core.campaign.model import (
    AgentGroup,
    AgentPerson,
    AutoReply,
    CampaignSettings,
    Disposition,
    Manifest,
    Queue,
    Skill,
    Survey,
    Template,
    TriageMenu,
    Webhook,
)
from core.campaign.problems import Path, Problem, Severity, format_path
from core.channel import Capabilities, ManifestAccount

__all__ = ["Declared", "ManifestView", "check_rules", "required_env", "secret_env_fields"]


@dataclass
class Declared:
    """Names declared in the file, read leniently from the raw data."""

    skills: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    auto_replies: set[str] = field(default_factory=set)
    accounts: dict[str, set[str]] = field(default_factory=dict)  # channel → account names
    templates: set[str] = field(default_factory=set)
    channel_kinds: set[str] = field(default_factory=set)

    def accounts_of(self, specs: Iterable[ChannelSpec]) -> set[str]:
        return {name for spec in specs for name in self.accounts.get(spec.name, ())}


@dataclass
class ManifestView:
    catalog: ChannelCatalog = field(default_factory=default_catalog)
    campaign: CampaignSettings | None = None
    channel_accounts: list[tuple[Path, ChannelSpec, ManifestAccount]] = field(default_factory=list)
    skills: list[tuple[Path, Skill]] = field(default_factory=list)
    queues: list[tuple[Path, Queue]] = field(default_factory=list)
    agents: list[tuple[Path, AgentPerson | AgentGroup]] = field(default_factory=list)
    agents_complete: bool = True
    auto_replies: list[tuple[Path, str, AutoReply]] = field(default_factory=list)
    triage_menu: tuple[Path, TriageMenu] | None = None
    survey: tuple[Path, Survey] | None = None
    webhooks: list[tuple[Path, Webhook]] = field(default_factory=list)
    templates: list[tuple[Path, Template]] = field(default_factory=list)
    dispositions: list[tuple[Path, Disposition]] = field(default_factory=list)
    declared: Declared = field(default_factory=Declared)
    env_refs: list[tuple[Path, str]] | None = None  # read from raw data when accounts did not parse
    complete: bool = True  # False when built from a document with schema errors

    @classmethod
    def of(cls, manifest: Manifest) -> ManifestView:
        channels = manifest.channels
        view = cls(
            catalog=channels.catalog,
            campaign=manifest.campaign,
            channel_accounts=[
                (("channels", spec.name, i), spec, a) for spec, i, a in channels.all_accounts()
            ],
            skills=[(("skills", i), s) for i, s in enumerate(manifest.skills)],
            queues=[(("queues", i), q) for i, q in enumerate(manifest.queues)],
            agents=[(("agents", i), a) for i, a in enumerate(manifest.agents)],
            auto_replies=[(("auto_replies", k), k, r) for k, r in manifest.auto_replies.items()],
            triage_menu=(("triage_menu",), manifest.triage_menu) if manifest.triage_menu else None,
            survey=(("survey",), manifest.survey) if manifest.survey else None,
            webhooks=[
                (("integrations", "webhooks", i), w)
                for i, w in enumerate(manifest.integrations.webhooks if manifest.integrations else ())
            ],
            templates=[(("templates", i), t) for i, t in enumerate(manifest.templates)],
            dispositions=[(("dispositions", i), d) for i, d in enumerate(manifest.dispositions)],
        )
        view.declared = Declared(
            skills={s.name for s in manifest.skills},
            queues={q.name for q in manifest.queues},
            auto_replies=set(manifest.auto_replies),
            accounts={spec.name: {a.name for a in items} for spec, items in channels.sections()},
            templates={t.name for t in manifest.templates},
            channel_kinds={spec.name for spec, items in channels.sections() if items},
        )
        return view

    def accounts(self) -> list[tuple[Path, ChannelSpec, ManifestAccount]]:
        return list(self.channel_accounts)

    def channels_that(self, wanted: Callable[[Capabilities], bool], what: str) -> ChannelGroup:
        """The channels with a capability; ``what`` names them when none is installed."""
        return self.catalog.that(wanted, what)


def _menu(capabilities: Capabilities) -> bool:
    return capabilities.triage_menu


def _hub(capabilities: Capabilities) -> bool:
    return capabilities.hub_link_target


def _templated(capabilities: Capabilities) -> bool:
    return capabilities.templates


def _did_you_mean(name: str, known: Iterable[str], section: str) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"declare it under '{section}'"


# --------------------------------------------------------------------------- duplicates


def _duplicates(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []

    def scan(kind: str, items: Iterable[tuple[Path, str]]) -> None:
        first: dict[str, Path] = {}
        for path, key in items:
            if key in first:
                problems.append(
                    Problem(
                        "duplicate_name",
                        f"duplicate {kind} {key!r} (first at {format_path(first[key])})",
                        path,
                        hint=f"each {kind} must be unique; rename or remove one",
                    )
                )
            else:
                first[key] = path

    scan("skill", (((*p, "name"), s.name) for p, s in view.skills))
    scan("queue", (((*p, "name"), q.name) for p, q in view.queues))
    scan("channel account name", (((*p, "name"), a.name) for p, _, a in view.accounts()))
    for spec in view.catalog:
        address = spec.section.address_field
        scan(
            spec.section.address_label or address,
            (((*p, address), str(getattr(a, address))) for p, s, a in view.accounts() if s is spec),
        )
    scan("agent email", (((*p, "email"), a.email) for p, a in view.agents if isinstance(a, AgentPerson)))
    scan("agent group", (((*p, "group"), a.group) for p, a in view.agents if isinstance(a, AgentGroup)))
    scan("template", (((*p, "name"), f"{t.name} ({t.language})") for p, t in view.templates))
    scan("disposition code", (((*p, "code"), d.code) for p, d in view.dispositions))
    return problems


# --------------------------------------------------------------------------- skills and eligibility


def _unknown_skills(view: ManifestView) -> list[Problem]:
    known = view.declared.skills
    problems: list[Problem] = []

    def report(path: Path, skill: str, at_key: bool) -> None:
        problems.append(
            Problem(
                "unknown_skill",
                f"unknown skill {skill!r}",
                path,
                _did_you_mean(skill, known, "skills"),
                at_key=at_key,
            )
        )

    for path, queue in view.queues:
        for skill in queue.required_skills:
            if skill not in known:
                report((*path, "required_skills", skill), skill, True)
        for index, skill in enumerate(queue.preferred_skills):
            if skill not in known:
                report((*path, "preferred_skills", index), skill, False)
    for path, agent in view.agents:
        for skill in agent.skills:
            if skill not in known:
                report((*path, "skills", skill), skill, True)
    return problems


def _loosest_requirements(queue: Queue) -> dict[str, int]:
    if not queue.expansion:
        return dict(queue.required_skills)
    floor = min(step.min_proficiency for step in queue.expansion)
    return {skill: min(level, floor) for skill, level in queue.required_skills.items()}


def _can_serve(agent: AgentPerson | AgentGroup, queue: Queue, needs: Mapping[str, int]) -> bool:
    if not any(agent.capacity.get(channel, 0) > 0 for channel in queue.channels):
        return False
    return all(agent.skills.get(skill, 0) >= level for skill, level in needs.items())


def _eligibility(view: ManifestView) -> list[Problem]:
    if not view.agents_complete:
        return []  # some agents did not parse; their errors are reported, guessing here would mislead
    problems: list[Problem] = []
    for path, queue in view.queues:
        if any(skill not in view.declared.skills for skill in queue.required_skills):
            continue  # reported as unknown skill
        needs = _loosest_requirements(queue)
        if any(_can_serve(agent, queue, needs) for _, agent in view.agents):
            continue
        wanted = ", ".join(f"{skill} ≥ {level}" for skill, level in needs.items()) or "any skills"
        problems.append(
            Problem(
                "no_eligible_agent",
                f"no agent can serve queue {queue.name!r}: nobody has {wanted} with capacity on "
                f"{' or '.join(queue.channels)}",
                (*path, "name"),
                hint="give an agent (or group) these skills and capacity on one of the queue's channels, "
                "or lower required_skills / add an expansion step",
            )
        )
    return problems


# --------------------------------------------------------------------------- queues


def _queue_channels(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    for path, queue in view.queues:
        for index, channel in enumerate(queue.channels):
            if channel not in view.declared.channel_kinds:
                problems.append(
                    Problem(
                        "channel_without_account",
                        f"queue {queue.name!r} serves {channel}, but no {channel} account is declared",
                        (*path, "channels", index),
                        hint=f"add an account under 'channels.{channel}' or remove {channel} from this queue",
                    )
                )
    return problems


def _hours(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    for path, queue in view.queues:
        hours = queue.business_hours
        if hours is None:
            continue
        base: Path = (*path, "business_hours")
        if not any(hours.weekly.values()):
            problems.append(
                Problem(
                    "never_open",
                    f"queue {queue.name!r} is never open",
                    (*base, "weekly"),
                    hint="list at least one interval, or remove business_hours to be open all the time",
                )
            )
        for day, intervals in hours.weekly.items():
            ordered = sorted(enumerate(intervals), key=lambda item: parse_interval_minutes(item[1]))
            previous: tuple[int, str] | None = None
            for index, interval in ordered:
                if previous is not None:
                    _, prev_end = parse_interval_minutes(previous[1])
                    start, _ = parse_interval_minutes(interval)
                    if start < prev_end:
                        # Report at whichever of the two comes later in the file.
                        later, earlier = sorted([(index, interval), previous], reverse=True)
                        problems.append(
                            Problem(
                                "overlapping_hours",
                                f"{later[1]} overlaps {earlier[1]} on {day}",
                                (*base, "weekly", day, later[0]),
                                hint="merge the two intervals or make one end before the other starts",
                            )
                        )
                if (
                    previous is None
                    or parse_interval_minutes(interval)[1] > parse_interval_minutes(previous[1])[1]
                ):
                    previous = (index, interval)
        seen: set[Any] = set()
        for index, holiday in enumerate(hours.holidays):
            if holiday in seen:
                problems.append(
                    Problem(
                        "duplicate_holiday",
                        f"holiday {holiday.isoformat()} is listed twice",
                        (*base, "holidays", index),
                        hint="remove the repeated date",
                        severity="warning",
                    )
                )
            seen.add(holiday)
    return problems


def _overflow(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    known = view.declared.queues
    edges: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path, queue in view.queues:
        if queue.overflow is None:
            continue
        target = queue.overflow.to
        at: Path = (*path, "overflow", "to")
        if target == queue.name:
            problems.append(
                Problem(
                    "overflow_cycle",
                    f"queue {queue.name!r} overflows to itself",
                    at,
                    hint="name another queue",
                )
            )
        elif target not in known:
            problems.append(
                Problem(
                    "unknown_queue",
                    f"overflow to unknown queue {target!r}",
                    at,
                    hint=_did_you_mean(target, known, "queues"),
                )
            )
        else:
            edges.setdefault(queue.name, target)
            where.setdefault(queue.name, at)
    reported: set[frozenset[str]] = set()
    for start in edges:
        chain = [start]
        current = start
        while current in edges:
            current = edges[current]
            if current in chain:
                cycle = chain[chain.index(current) :]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    first = min(cycle, key=lambda name: _path_key(where[name]))
                    ring = cycle[cycle.index(first) :] + cycle[: cycle.index(first)] + [first]
                    problems.append(
                        Problem(
                            "overflow_cycle",
                            f"overflow cycle: {' → '.join(ring)}",
                            where[first],
                            hint="a conversation would bounce between these queues; end the chain at a queue "
                            "without overflow",
                        )
                    )
                break
            chain.append(current)
    return problems


def _path_key(path: Path) -> tuple[str, ...]:
    return tuple(f"{part:08d}" if isinstance(part, int) else part for part in path)


def _expansion(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    for path, queue in view.queues:
        if queue.expansion and not queue.required_skills:
            problems.append(
                Problem(
                    "expansion_without_skills",
                    f"queue {queue.name!r} has expansion steps but no required_skills to relax",
                    (*path, "expansion"),
                    hint="remove expansion or add required_skills",
                    severity="warning",
                )
            )
        for index in range(1, len(queue.expansion)):
            before, step = queue.expansion[index - 1], queue.expansion[index]
            at: Path = (*path, "expansion", index)
            if step.after_s <= before.after_s:
                problems.append(
                    Problem(
                        "expansion_order",
                        f"expansion step after_s {step.after_s} does not come after {before.after_s}",
                        (*at, "after_s"),
                        hint="list the steps by increasing after_s",
                    )
                )
            if step.min_proficiency > before.min_proficiency:
                problems.append(
                    Problem(
                        "expansion_order",
                        f"expansion step raises min_proficiency from {before.min_proficiency} to "
                        f"{step.min_proficiency}",
                        (*at, "min_proficiency"),
                        hint="each step may only relax the requirement (lower or equal min_proficiency)",
                    )
                )
    return problems


# --------------------------------------------------------------------------- routing entry points


def _queue_by_name(view: ManifestView) -> dict[str, Queue]:
    return {queue.name: queue for _, queue in view.queues}


def _queue_reference(
    view: ManifestView, path: Path, name: str, channel: ChannelGroup | ChannelSpec | None, what: str
) -> list[Problem]:
    if name not in view.declared.queues:
        return [
            Problem(
                "unknown_queue",
                f"{what} unknown queue {name!r}",
                path,
                _did_you_mean(name, view.declared.queues, "queues"),
            )
        ]
    queue = _queue_by_name(view).get(name)
    if channel is None or queue is None:
        return []
    served = channel.names if isinstance(channel, ChannelGroup) else {channel.name}
    if served and not served & set(queue.channels):
        shown = " or ".join(sorted(served))
        return [
            Problem(
                "queue_channel_mismatch",
                f"queue {name!r} does not serve {shown}",
                path,
                hint=f"add {shown} to the channels of queue {name!r} or choose another queue",
            )
        ]
    return []


def _triage(view: ManifestView) -> list[Problem]:
    if view.triage_menu is None:
        return []
    path, menu = view.triage_menu
    problems: list[Problem] = []
    asking = view.channels_that(_menu, "triage-menu")
    if not asking.names & view.declared.channel_kinds:
        problems.append(
            Problem(
                f"triage_without_{asking.code}",
                f"the triage menu is answered on {asking.label}, "
                f"but the campaign has no {asking.label} account",
                path,
                hint=f"add an account under '{asking.sections}' or remove triage_menu",
            )
        )
    for index, option in enumerate(menu.options):
        problems.extend(
            _queue_reference(
                view, (*path, "options", index, "queue"), option.queue, asking, "triage option to"
            )
        )
    problems.extend(
        _queue_reference(view, (*path, "default_queue"), menu.default_queue, asking, "triage default")
    )
    known = view.declared.accounts_of(asking.specs)
    for index, account in enumerate(menu.accounts):
        if account not in known:
            problems.append(
                Problem(
                    "unknown_account",
                    f"unknown {asking.label} account {account!r}",
                    (*path, "accounts", index),
                    hint=_did_you_mean(account, known, asking.sections),
                )
            )
    return problems


def _account_routes(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    menu = view.triage_menu[1] if view.triage_menu else None
    for path, spec, account in view.accounts():
        if account.default_queue is not None:
            problems.extend(
                _queue_reference(
                    view, (*path, "default_queue"), account.default_queue, spec, "default_queue is an"
                )
            )
            continue
        asks = spec.capabilities.triage_menu
        triaged = menu is not None and asks and (not menu.accounts or account.name in menu.accounts)
        if not triaged:
            problems.append(
                Problem(
                    "account_without_queue",
                    f"conversations arriving on {spec.name} account {account.name!r} have no queue",
                    (*path, "name"),
                    hint="set 'default_queue' on the account"
                    + (" or let the triage menu ask on it" if asks else ""),
                )
            )
    return problems


# --------------------------------------------------------------------------- texts


def _auto_replies(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    known = view.declared.auto_replies
    used: set[str] = set()
    replies = {key: reply for _, key, reply in view.auto_replies}
    hubs = view.channels_that(_hub, "hub-link")
    hub_accounts = view.declared.accounts_of(hubs.specs)

    def reference(path: Path, key: str | None, spec: ChannelSpec | None) -> None:
        if key is None:
            return
        used.add(key)
        if key not in known:
            problems.append(
                Problem(
                    "unknown_auto_reply",
                    f"auto-reply {key!r} is not defined",
                    path,
                    hint=_did_you_mean(key, known, "auto_replies"),
                )
            )
        elif (
            spec is not None
            and spec.capabilities.hub_link_target
            and (reply := replies.get(key)) is not None
            and reply.hub is not None
        ):
            others = view.channels_that(lambda c: not c.hub_link_target, "other")
            problems.append(
                Problem(
                    f"hub_on_{spec.name}",
                    f"auto-reply {key!r} invites the customer to {hubs.label}, but is used on a "
                    f"{spec.display_name} account",
                    path,
                    hint=f"use hub replies on {others.label} accounts",
                )
            )

    for path, spec, account in view.accounts():
        reference((*path, "welcome_reply"), account.welcome_reply, spec)
    for path, queue in view.queues:
        if queue.business_hours is not None:
            reference(
                (*path, "business_hours", "outside_hours_reply"),
                queue.business_hours.outside_hours_reply,
                None,
            )

    for path, key, reply in view.auto_replies:
        if reply.hub is not None and reply.hub.whatsapp_account not in hub_accounts:
            problems.append(
                Problem(
                    "unknown_account",
                    f"hub link to undeclared {hubs.label} account {reply.hub.whatsapp_account!r}",
                    (*path, "hub", "whatsapp_account"),
                    hint=_did_you_mean(reply.hub.whatsapp_account, hub_accounts, hubs.sections),
                )
            )
        texts: list[tuple[Path, str]] = [((*path, "text"), reply.text)]
        texts.extend(
            ((*path, "translations", language), text) for language, text in reply.translations.items()
        )
        for text_path, text in texts:
            problems.extend(_check_text(text_path, text, reply.hub is not None, hubs.label))
        if key not in used and view.complete:
            problems.append(
                Problem(
                    "unused_auto_reply",
                    f"auto-reply {key!r} is never used",
                    path,
                    hint="reference it from an account's welcome_reply or a queue's outside_hours_reply",
                    severity="warning",
                    at_key=True,
                )
            )
    return problems


def _check_text(path: Path, text: str, is_hub: bool, hub_label: str) -> list[Problem]:
    try:
        fields = placeholders(text)
    except ValueError:
        return [
            Problem(
                "invalid_placeholder",
                "unbalanced '{' or '}' in text",
                path,
                hint="write '{{' or '}}' for a brace",
            )
        ]
    problems: list[Problem] = []
    for name in fields:
        if name not in PLACEHOLDERS:
            problems.append(
                Problem(
                    "invalid_placeholder",
                    f"unknown placeholder {{{name}}}",
                    path,
                    hint=f"only {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))} is filled in",
                )
            )
    if is_hub and "wa_link" not in fields:
        problems.append(
            Problem(
                "hub_without_link",
                "a hub reply must contain {wa_link}",
                path,
                hint="e.g. 'Escríbenos: {wa_link}'",
            )
        )
    if not is_hub and "wa_link" in fields:
        problems.append(
            Problem(
                "link_without_hub",
                "{wa_link} needs a 'hub' with the " + hub_label + " account to link to",
                path,
                hint="add 'hub: {whatsapp_account: NAME}' to this auto-reply",
            )
        )
    return problems


_TEMPLATE_FIELD = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def _templates(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    templated = view.channels_that(_templated, "template")
    known = view.declared.accounts_of(templated.specs)
    for path, template in view.templates:
        if template.whatsapp_account is not None and template.whatsapp_account not in known:
            problems.append(
                Problem(
                    "unknown_account",
                    f"unknown {templated.label} account {template.whatsapp_account!r}",
                    (*path, "whatsapp_account"),
                    hint=_did_you_mean(template.whatsapp_account, known, templated.sections),
                )
            )
        if template.body is None:
            continue
        used = sorted({int(n) for n in _TEMPLATE_FIELD.findall(template.body)})
        count = len(template.parameters)
        if used != list(range(1, count + 1)):
            shown = ", ".join("{{" + str(n) + "}}" for n in used) or "no parameters"
            problems.append(
                Problem(
                    "template_parameters",
                    f"template {template.name!r} body uses {shown} but {count} parameter(s) are listed",
                    (*path, "parameters"),
                    hint="list one parameter name per {{n}}, numbered 1, 2, … without gaps, as Meta approved",
                )
            )
    return problems


def _dispositions(view: ManifestView) -> list[Problem]:
    problems: list[Problem] = []
    for path, disposition in view.dispositions:
        follow = disposition.schedules_follow_up
        if follow is None:
            continue
        at: Path = (*path, "schedules_follow_up")
        problems.extend(_queue_reference(view, (*at, "queue"), follow.queue, None, "follow-up to"))
        if follow.on_field is not None and follow.on_field not in disposition.requires:
            problems.append(
                Problem(
                    "follow_up_field",
                    f"follow-up on {follow.on_field!r}, but the disposition does not require it",
                    (*at, "on_field"),
                    hint=f"add {follow.on_field!r} to requires so the agent must enter it",
                )
            )
        if follow.template is not None and follow.template not in view.declared.templates:
            problems.append(
                Problem(
                    "unknown_template",
                    f"unknown template {follow.template!r}",
                    (*at, "template"),
                    hint=_did_you_mean(follow.template, view.declared.templates, "templates"),
                )
            )
    return problems


def _survey(view: ManifestView) -> list[Problem]:
    """A survey's channels have accounts here; its template is one of the campaign's, in its
    language, on a channel that sends templates."""
    if view.survey is None:
        return []
    path, survey = view.survey
    problems: list[Problem] = []
    for index, channel in enumerate(survey.channels):
        if channel not in view.declared.channel_kinds:
            problems.append(
                Problem(
                    "survey_channel",
                    f"the survey names {channel!r}, but the campaign has no {channel} account",
                    (*path, "channels", index),
                    hint="add an account under 'channels' or remove it from survey.channels",
                )
            )
    if survey.template is not None:
        at: Path = (*path, "template")
        languages = {t.language for _, t in view.templates if t.name == survey.template.name}
        if not languages and survey.template.name not in view.declared.templates:
            problems.append(
                Problem(
                    "unknown_template",
                    f"unknown template {survey.template.name!r}",
                    (*at, "name"),
                    hint=_did_you_mean(survey.template.name, view.declared.templates, "templates"),
                )
            )
        elif languages and survey.template.language not in languages:
            problems.append(
                Problem(
                    "unknown_template",
                    f"template {survey.template.name!r} is not declared in {survey.template.language!r}",
                    (*at, "language"),
                    hint=f"declared in: {', '.join(sorted(languages))}",
                )
            )
    return problems


# --------------------------------------------------------------------------- secrets


def secret_env_fields(view: ManifestView) -> list[tuple[Path, str]]:
    """Every ``*_env`` field in use: (path, environment-variable name)."""
    if view.env_refs is not None:
        return list(view.env_refs)
    out: list[tuple[Path, str]] = []
    for path, spec, account in view.accounts():
        for name in spec.section.secret_fields:
            value = getattr(account, name, None)
            if value is not None:
                out.append(((*path, name), value))
    out.extend(((*path, "secret_env"), webhook.secret_env) for path, webhook in view.webhooks)
    return out


def required_env(manifest: Manifest) -> list[str]:
    """The environment variables the manifest needs, sorted."""
    return sorted({name for _, name in secret_env_fields(ManifestView.of(manifest))})


def _environment(view: ManifestView, env: Mapping[str, str], severity: Severity) -> list[Problem]:
    return [
        Problem(
            "missing_env",
            f"environment variable {name} is not set",
            path,
            hint=f"export {name}=… where the campaign is validated and applied, and where the server runs",
            severity=severity,
        )
        for path, name in secret_env_fields(view)
        if not env.get(name)
    ]


_RULES: tuple[Callable[[ManifestView], list[Problem]], ...] = (
    _duplicates,
    _unknown_skills,
    _eligibility,
    _queue_channels,
    _hours,
    _overflow,
    _expansion,
    _triage,
    _account_routes,
    _auto_replies,
    _templates,
    _dispositions,
    _survey,
)


def check_rules(
    view: ManifestView, env: Mapping[str, str] | None, *, missing_env: Severity = "error"
) -> list[Problem]:
    """Every cross-reference rule; ``env`` None skips the environment-variable check, whose
    findings are ``missing_env`` (an error where the campaign is applied, a warning for the file alone)."""
    problems: list[Problem] = []
    for rule in _RULES:
        problems.extend(rule(view))
    if env is not None:
        problems.extend(_environment(view, env, missing_env))
    return problems
