"""Validate a manifest file and report every problem at once, each with file:line:column.

Three passes over one YAML document: syntax (with duplicate keys), the schema (pydantic, all
errors), then the cross-reference rules (``core.campaign.rules``) over whatever parsed — so a
file with a typo in one queue still hears about the unknown skill in another.  The environment
is an argument (``os.environ`` by default): a secret's variable must be set where the manifest
is applied; ``missing_env="warning"`` reports an unset one as a warning, for checking the file
alone.  The channel sections are validated by the catalog of installed channels
(``core.campaign.channels``) unless ``channels`` names another.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from core.campaign.channels import ChannelCatalog, default_catalog
from core.campaign.model import (
    Agent,
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
)
from core.campaign.problems import Path, Problem, Severity, format_problems, summarize
from core.campaign.rules import Declared, ManifestView, check_rules
from core.campaign.schema_errors import problems_from_validation_error
from core.campaign.source import SourceMap, load_yaml
from core.errors import InvalidInput

__all__ = [
    "ValidationResult",
    "check_manifest",
    "load_manifest",
    "locate_problems",
    "parse_manifest",
    "validate_file",
    "validate_text",
]

_T = TypeVar("_T")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SALVAGE_ROUNDS = 6
_UNION_TAGS = frozenset({"individual", "agent_group"})
_AGENT: TypeAdapter[AgentPerson | AgentGroup] = TypeAdapter(Agent)
_CAMPAIGN = TypeAdapter(CampaignSettings)
_SKILL = TypeAdapter(Skill)
_QUEUE = TypeAdapter(Queue)
_TEMPLATE = TypeAdapter(Template)
_DISPOSITION = TypeAdapter(Disposition)
_AUTO_REPLY = TypeAdapter(AutoReply)
_TRIAGE = TypeAdapter(TriageMenu)
_SURVEY = TypeAdapter(Survey)


@dataclass(frozen=True)
class ValidationResult:
    """Every problem found, in file order, and the manifest when there is no error."""

    problems: tuple[Problem, ...]
    manifest: Manifest | None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.manifest is not None

    def format(self) -> str:
        """All problems, one per line, then a summary line."""
        lines = format_problems(self.problems)
        return f"{lines}\n{summarize(self.problems)}" if lines else summarize(self.problems)

    def manifest_or_raise(self) -> Manifest:
        """The manifest, or ``InvalidInput`` listing every error (``details["problems"]``)."""
        if self.manifest is not None:
            return self.manifest
        raise InvalidInput(
            f"invalid campaign manifest ({summarize(self.problems)}):\n{format_problems(self.errors)}",
            details={"problems": [_problem_dict(p) for p in self.problems]},
        )


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "severity": problem.severity,
        "message": problem.message,
        "hint": problem.hint,
        "path": list(problem.path),
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
    }


# --------------------------------------------------------------------------- partial view


def _remove(data: Any, target: Path) -> bool:
    """Delete the mapping entry at ``target`` (a path ending in a key); whether something went."""
    node = data
    for part in target[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    if isinstance(node, dict) and target and target[-1] in node:
        del node[target[-1]]
        return True
    return False


def _to_key(path: Path) -> Path:
    """The path cut back to its last mapping key, so no list index shifts when it is removed."""
    end = len(path)
    while end and not isinstance(path[end - 1], str):
        end -= 1
    return path[:end]


def _salvage(
    adapter: TypeAdapter[_T], raw: Any, context: dict[str, Any] | None = None
) -> tuple[_T | None, bool]:
    """Parse ``raw``; if it fails, drop the offending entries and retry, so rules still see the rest.

    Returns the value (or None) and whether it parsed without dropping anything.
    """
    try:
        return adapter.validate_python(raw, context=context), True
    except ValidationError:
        pass
    data = copy.deepcopy(raw)
    for _ in range(_SALVAGE_ROUNDS):
        try:
            return adapter.validate_python(data, context=context), False
        except ValidationError as exc:
            removed = False
            for error in exc.errors(include_url=False):
                loc = tuple(p for p in error["loc"] if p not in _UNION_TAGS and p != "[key]")
                if error["type"] == "missing":
                    loc = loc[:-1]
                target = _to_key(loc)
                if not target:
                    return None, False
                removed = _remove(data, target) or removed
            if not removed:
                return None, False
    return None, False


def _each(
    adapter: TypeAdapter[_T], raw: Any, base: Path, context: dict[str, Any] | None = None
) -> tuple[list[tuple[Path, _T]], bool]:
    if not isinstance(raw, list):
        return [], raw is None
    out: list[tuple[Path, _T]] = []
    clean = True
    for index, entry in enumerate(raw):
        salvaged = _salvage(adapter, entry, context)
        item = salvaged[0]
        clean = clean and salvaged[1]
        if item is not None:
            out.append(((*base, index), item))
    return out, clean


def _names(raw: Any, key: str) -> set[str]:
    if not isinstance(raw, list):
        return set()
    return {entry[key] for entry in raw if isinstance(entry, dict) and isinstance(entry.get(key), str)}


def _env_refs(channels: dict[Any, Any], catalog: ChannelCatalog) -> list[tuple[Path, str]]:
    """Every ``*_env`` value that names a variable, even in accounts that did not parse."""
    refs: list[tuple[Path, str]] = []
    for kind in catalog.names:
        entries = channels.get(kind)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            for key, value in entry.items():
                if (
                    isinstance(key, str)
                    and key.endswith("_env")
                    and isinstance(value, str)
                    and _ENV_NAME.match(value)
                ):
                    refs.append((("channels", kind, index, key), value))
    return refs


def _accounts(catalog: ChannelCatalog) -> dict[str, TypeAdapter[Any]]:
    return {spec.name: TypeAdapter(spec.section.account_model) for spec in catalog}


def _partial_view(data: dict[str, Any], catalog: ChannelCatalog) -> ManifestView:
    """The parts of an invalid document that do parse, with the names declared anywhere."""
    raw_channels = data.get("channels")
    channels: dict[Any, Any] = raw_channels if isinstance(raw_channels, dict) else {}
    context = {"channels": catalog}
    view = ManifestView(catalog=catalog, campaign=_salvage(_CAMPAIGN, data.get("campaign"))[0])
    for name, adapter in _accounts(catalog).items():
        spec = catalog.get(name)
        assert spec is not None
        parsed, _ = _each(adapter, channels.get(name), ("channels", name))
        view.channel_accounts.extend((path, spec, account) for path, account in parsed)
    view.skills, _ = _each(_SKILL, data.get("skills"), ("skills",))
    view.queues, _ = _each(_QUEUE, data.get("queues"), ("queues",), context)
    view.templates, _ = _each(_TEMPLATE, data.get("templates"), ("templates",))
    view.dispositions, _ = _each(_DISPOSITION, data.get("dispositions"), ("dispositions",))
    # A damaged agent could make a queue look unservable: the eligibility rule only runs on clean agents.
    view.agents, view.agents_complete = _each(_AGENT, data.get("agents"), ("agents",), context)
    raw_replies = data.get("auto_replies")
    if isinstance(raw_replies, dict):
        for key, entry in raw_replies.items():
            reply = _salvage(_AUTO_REPLY, entry)[0]
            if isinstance(key, str) and reply is not None:
                view.auto_replies.append((("auto_replies", key), key, reply))
    menu = _salvage(_TRIAGE, data["triage_menu"])[0] if data.get("triage_menu") is not None else None
    view.triage_menu = (("triage_menu",), menu) if menu is not None else None
    survey = _salvage(_SURVEY, data["survey"])[0] if data.get("survey") is not None else None
    view.survey = (("survey",), survey) if survey is not None else None
    view.env_refs = _env_refs(channels, catalog)
    view.complete = False
    view.declared = Declared(
        skills=_names(data.get("skills"), "name"),
        queues=_names(data.get("queues"), "name"),
        auto_replies={k for k in raw_replies if isinstance(k, str)}
        if isinstance(raw_replies, dict)
        else set(),
        accounts={name: _names(channels.get(name), "name") for name in catalog.names},
        templates=_names(data.get("templates"), "name"),
        channel_kinds={k for k in catalog.names if channels.get(k)},
    )
    return view


# --------------------------------------------------------------------------- entry points


def _locate(problems: list[Problem], source: SourceMap, filename: str) -> list[Problem]:
    located: list[Problem] = []
    for problem in problems:
        if problem.line is None:
            mark = source.locate(problem.path, at_key=problem.at_key)
            problem = problem.located(filename, mark.line if mark else None, mark.column if mark else None)
        located.append(problem)
    return sorted(located, key=lambda p: (p.line or 0, p.column or 0, p.code))


def locate_problems(problems: list[Problem], text: str, filename: str = "<manifest>") -> list[Problem]:
    """``problems`` found after validation (an apply's checks), with their lines in ``text``."""
    return _locate(problems, load_yaml(text, filename).source, filename)


def _result(problems: list[Problem], manifest: Manifest | None) -> ValidationResult:
    has_errors = any(p.severity == "error" for p in problems)
    return ValidationResult(tuple(problems), None if has_errors else manifest)


def _environment(env: Mapping[str, str] | None, check_env: bool) -> Mapping[str, str] | None:
    if not check_env:
        return None
    return os.environ if env is None else env


def validate_text(
    text: str,
    filename: str = "<manifest>",
    *,
    env: Mapping[str, str] | None = None,
    check_env: bool = True,
    missing_env: Severity = "error",
    channels: ChannelCatalog | None = None,
) -> ValidationResult:
    """Validate manifest text; ``env`` defaults to ``os.environ``; ``check_env=False`` skips secrets,
    ``missing_env="warning"`` reports unset variables without failing; ``channels`` defaults to the
    installed channels."""
    catalog = channels or default_catalog()
    loaded = load_yaml(text, filename)
    problems = list(loaded.problems)
    if any(p.code == "yaml_syntax" for p in problems):
        return _result(problems, None)
    data = loaded.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        problems.append(
            Problem(
                "not_a_manifest",
                f"the document is {what}",
                hint="a manifest starts with 'apiVersion: centralita/v1' and 'kind: Campaign'",
            )
        )
        return _result(_locate(problems, loaded.source, filename), None)
    manifest: Manifest | None = None
    try:
        manifest = Manifest.model_validate(data, context={"channels": catalog})
    except ValidationError as exc:
        problems.extend(problems_from_validation_error(exc, channels=catalog))
    view = ManifestView.of(manifest) if manifest is not None else _partial_view(data, catalog)
    problems.extend(check_rules(view, _environment(env, check_env), missing_env=missing_env))
    return _result(_locate(problems, loaded.source, filename), manifest)


def validate_file(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    check_env: bool = True,
    missing_env: Severity = "error",
    channels: ChannelCatalog | None = None,
) -> ValidationResult:
    """Validate a manifest file; problems carry ``path`` as their file name."""
    filename = os.fspath(path)
    try:
        text = FsPath(filename).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(
            "unreadable_file", f"cannot read the file: {reason}", hint="check the path and encoding (UTF-8)"
        )
        return ValidationResult((problem.located(filename, None, None),), None)
    return validate_text(
        text, filename, env=env, check_env=check_env, missing_env=missing_env, channels=channels
    )


def check_manifest(
    manifest: Manifest, *, env: Mapping[str, str] | None = None, check_env: bool = True
) -> list[Problem]:
    """The cross-reference rules for a manifest built in code (e.g. exported); no positions."""
    return check_rules(ManifestView.of(manifest), _environment(env, check_env))


def parse_manifest(
    text: str,
    filename: str = "<manifest>",
    *,
    env: Mapping[str, str] | None = None,
    check_env: bool = False,
    channels: ChannelCatalog | None = None,
) -> Manifest:
    """The manifest in ``text``, or ``InvalidInput`` with every error.  Secrets unchecked by default."""
    return validate_text(text, filename, env=env, check_env=check_env, channels=channels).manifest_or_raise()


def load_manifest(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    check_env: bool = True,
    channels: ChannelCatalog | None = None,
) -> Manifest:
    """The manifest in the file at ``path``, or ``InvalidInput`` with every error."""
    return validate_file(path, env=env, check_env=check_env, channels=channels).manifest_or_raise()
