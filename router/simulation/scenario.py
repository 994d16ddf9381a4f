"""A what-if scenario: the run's length, the queues with their traffic, the agent groups, and the
router's policy — loaded from YAML with every problem reported at ``file:line:column``.

The schema (documented in ``docs/simulation.md``)::

    run: {warmup_contacts: 20000, contacts: 200000, seeds: 10}  # or {hours: 24, seeds: 10}
    service_level_thresholds_s: [20, 60]
    service_level_target: {threshold_s: 20, fraction: 0.8}     # optional: what a sweep looks for
    queues:
      - name: es-ventas
        skills: {ventas: 1}
        channel: whatsapp
        arrivals_per_hour: 300            # or a list of 24 hourly rates
        handle_time: {dist: exponential, mean_s: 240}
        patience: {dist: exponential, mean_s: 120}            # optional
    agents:
      - group: generalistas
        count: 20
        skills: {ventas: 5}
        capacity: {whatsapp: 3}
    policy: {selection: longest_idle, accept_delay_s: 0, wrap_up_s: 0}
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

from core.campaign.problems import Path, Problem
from core.campaign.source import SourceMap, load_yaml
from core.errors import InvalidInput
from router.policy import ExplainDetail, RouterConfig, Selection
from router.simulation.distributions import Distribution, Kind

__all__ = [
    "AgentGroupSpec",
    "PolicySpec",
    "QueueSpec",
    "RunSpec",
    "Scenario",
    "ServiceLevelTarget",
    "load_scenario",
    "parse_scenario",
    "stability_warnings",
]

HOURS_PER_DAY = 24
_ROUTER_FIELDS = {f.name: f for f in dataclasses.fields(RouterConfig) if not f.name.startswith("explain")}
_POLICY_KEYS = ("accept_delay_s", *_ROUTER_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """Either a steady state (``contacts`` measured after ``warmup_contacts``) or a day of
    ``hours`` starting empty at midnight; ``seeds`` independent replications from ``seed``."""

    contacts: int | None = 100_000
    warmup_contacts: int = 10_000
    hours: int | None = None
    seeds: int = 10
    seed: int = 1

    @property
    def mode(self) -> str:
        return "hours" if self.hours is not None else "contacts"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceLevelTarget:
    threshold_s: float = 20.0
    fraction: float = 0.8


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSpec:
    name: str
    skills: Mapping[str, int]
    channel: str
    arrivals_per_hour: tuple[float, ...]  # one rate, or 24 hourly rates
    handle_time: Distribution
    patience: Distribution | None = None
    priority: int = 0
    preferred_skills: Mapping[str, int] = field(default_factory=dict)

    @property
    def mean_rate_per_hour(self) -> float:
        return sum(self.arrivals_per_hour) / len(self.arrivals_per_hour)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentGroupSpec:
    group: str
    count: int
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    weights: Mapping[str, int] = field(default_factory=dict)
    total_capacity: int | None = None

    def can_serve(self, queue: QueueSpec) -> bool:
        units = self.weights.get(queue.channel, 1)
        return (
            all(self.skills.get(skill, 0) >= level for skill, level in queue.skills.items())
            and self.capacity.get(queue.channel, 0) >= units
            and (self.total_capacity is None or self.total_capacity >= units)
        )

    def slots(self, channel: str | None = None) -> int:
        """Capacity units of one agent, for one channel or in all."""
        if channel is not None:
            units = self.capacity.get(channel, 0)
        else:
            units = sum(self.capacity.values())
        return units if self.total_capacity is None else min(units, self.total_capacity)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySpec:
    """The router's settings, and how agents behave: ``accept_delay_s`` from offer to acceptance."""

    router: RouterConfig = field(default_factory=lambda: RouterConfig(explain=ExplainDetail.MINIMAL))
    accept_delay_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    run: RunSpec
    queues: tuple[QueueSpec, ...]
    agents: tuple[AgentGroupSpec, ...]
    policy: PolicySpec = field(default_factory=PolicySpec)
    thresholds_s: tuple[float, ...] = (20.0,)
    target: ServiceLevelTarget | None = None
    source: str = "<scenario>"

    def __post_init__(self) -> None:
        if not self.queues:
            raise InvalidInput("a scenario needs at least one queue", field="queues")
        if not self.agents:
            raise InvalidInput("a scenario needs at least one agent group", field="agents")

    def with_seeds(self, seeds: int) -> Scenario:
        if seeds < 1:
            raise InvalidInput("--seeds must be at least 1", field="--seeds")
        return replace(self, run=replace(self.run, seeds=seeds))

    def with_group_count(self, group: str, count: int) -> Scenario:
        names = [g.group for g in self.agents]
        if group not in names:
            raise InvalidInput(f"no agent group {group!r}{_did_you_mean(group, names)}", field="--sweep")
        if count < 0:
            raise InvalidInput("an agent count cannot be negative", field="--sweep")
        agents = tuple(replace(g, count=count) if g.group == group else g for g in self.agents)
        return replace(self, agents=agents)

    def with_run(self, **changes: Any) -> Scenario:
        return replace(self, run=replace(self.run, **changes))


def stability_warnings(scenario: Scenario) -> list[str]:
    """Queues whose offered load reaches what the agents able to serve them could carry in all
    (without abandonment such a queue grows without bound and the figures mean little)."""
    out = []
    for queue in scenario.queues:
        able = sum(g.count * g.slots(queue.channel) for g in scenario.agents if g.can_serve(queue))
        offered = queue.mean_rate_per_hour / 3600 * queue.handle_time.mean_s
        if queue.patience is None and offered >= able:
            out.append(
                f"queue {queue.name!r}: {offered:.1f} Erlangs offered to {able} slots and no patience: "
                "the queue grows without bound"
            )
    return out


# ------------------------------------------------------------------ loading


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Reader:
    """Typed access to the loaded data that records a located ``Problem`` instead of raising."""

    def __init__(self, filename: str, source: SourceMap) -> None:
        self.filename = filename
        self.source = source
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str, *, hint: str | None = None, at_key: bool = False) -> None:
        mark = self.source.locate(path, at_key=at_key)
        self.problems.append(
            Problem("invalid_scenario", message, path, hint=hint, at_key=at_key).located(
                self.filename, mark.line if mark else None, mark.column if mark else None
            )
        )

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(
                    (*path, str(key)),
                    f"unknown key {key!r}{_did_you_mean(str(key), allowed)}",
                    hint=f"allowed: {', '.join(allowed)}",
                    at_key=True,
                )
        return value

    def integer(self, value: Any, path: Path, minimum: int = 0) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_kind(value)}")
            return None
        if value < minimum:
            self.fail(path, f"must be at least {minimum}, got {value}")
            return None
        return value

    def number(self, value: Any, path: Path, *, positive: bool = False) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.fail(path, f"expected a number, got {_kind(value)}")
            return None
        if value < 0 or (positive and value == 0):
            self.fail(path, f"must be {'positive' if positive else 'zero or more'}, got {value}")
            return None
        return float(value)

    def text(self, value: Any, path: Path) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value

    def levels(self, value: Any, path: Path, *, low: int, high: int | None) -> dict[str, int]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of name: integer, got {_kind(value)}")
            return {}
        out: dict[str, int] = {}
        for key, level in value.items():
            number = self.integer(level, (*path, str(key)), minimum=low)
            if number is None:
                continue
            if high is not None and number > high:
                self.fail((*path, str(key)), f"must be {low}..{high}, got {number}")
                continue
            out[str(key)] = number
        return out

    def distribution(self, value: Any, path: Path) -> Distribution | None:
        data = self.mapping(value, path, ("dist", "mean_s", "cv"))
        if not data:
            if isinstance(value, dict):
                self.fail(path, "a distribution needs dist and mean_s")
            return None
        kinds = tuple(k.value for k in Kind)
        name = data.get("dist")
        if name not in kinds:
            self.fail((*path, "dist"), f"unknown distribution {name!r}{_did_you_mean(str(name), kinds)}")
            return None
        kind = Kind(name)
        if "mean_s" not in data:
            self.fail(path, "missing mean_s")
            return None
        mean = self.number(data["mean_s"], (*path, "mean_s"), positive=True)
        cv = 1.0
        if kind is Kind.LOGNORMAL:
            if "cv" not in data:
                self.fail(path, "a lognormal distribution needs cv (standard deviation / mean)")
                return None
            given = self.number(data["cv"], (*path, "cv"), positive=True)
            if given is None:
                return None
            cv = given
        elif "cv" in data:
            self.fail((*path, "cv"), f"cv applies to lognormal only, not {kind.value}")
        if mean is None:
            return None
        return Distribution(kind, mean, cv)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _read_run(r: _Reader, value: Any) -> RunSpec | None:
    data = r.mapping(value, ("run",), ("warmup_contacts", "contacts", "hours", "seeds", "seed"))
    if not isinstance(value, dict):
        return None
    seeds = r.integer(data.get("seeds", 10), ("run", "seeds"), minimum=1)
    seed = r.integer(data.get("seed", 1), ("run", "seed"), minimum=0)
    if "hours" in data:
        if "contacts" in data or "warmup_contacts" in data:
            r.fail(("run",), "give either hours or contacts (with warmup_contacts), not both")
            return None
        hours = r.integer(data["hours"], ("run", "hours"), minimum=1)
        if hours is None or seeds is None or seed is None:
            return None
        return RunSpec(contacts=None, warmup_contacts=0, hours=hours, seeds=seeds, seed=seed)
    if "contacts" not in data:
        r.fail(
            ("run",),
            "missing contacts (or hours)",
            hint="e.g. run: {warmup_contacts: 20000, contacts: 200000}",
        )
        return None
    contacts = r.integer(data["contacts"], ("run", "contacts"), minimum=1)
    warmup = r.integer(data.get("warmup_contacts", 0), ("run", "warmup_contacts"), minimum=0)
    if contacts is None or warmup is None or seeds is None or seed is None:
        return None
    return RunSpec(contacts=contacts, warmup_contacts=warmup, hours=None, seeds=seeds, seed=seed)


def _read_rates(r: _Reader, value: Any, path: Path) -> tuple[float, ...] | None:
    if isinstance(value, list):
        if len(value) != HOURS_PER_DAY:
            r.fail(path, f"a list of hourly rates has 24 entries (00:00 … 23:00), got {len(value)}")
            return None
        rates = [r.number(v, (*path, i)) for i, v in enumerate(value)]
        if any(v is None for v in rates):
            return None
        checked = tuple(float(v) for v in rates if v is not None)
        if not any(checked):
            r.fail(path, "every hourly rate is zero")
            return None
        return checked
    rate = r.number(value, path, positive=True)
    return None if rate is None else (rate,)


_QUEUE_KEYS = (
    "name",
    "skills",
    "channel",
    "arrivals_per_hour",
    "handle_time",
    "patience",
    "priority",
    "preferred_skills",
)


def _read_queue(r: _Reader, value: Any, index: int) -> QueueSpec | None:
    path: Path = ("queues", index)
    data = r.mapping(value, path, _QUEUE_KEYS)
    if not isinstance(value, dict):
        return None
    for required in ("name", "channel", "arrivals_per_hour", "handle_time"):
        if required not in data:
            r.fail(path, f"missing {required}")
    if any(required not in data for required in ("name", "channel", "arrivals_per_hour", "handle_time")):
        return None
    name = r.text(data["name"], (*path, "name"))
    channel = r.text(data["channel"], (*path, "channel"))
    skills = r.levels(data.get("skills", {}), (*path, "skills"), low=1, high=10)
    preferred = r.levels(data.get("preferred_skills", {}), (*path, "preferred_skills"), low=0, high=None)
    rates = _read_rates(r, data["arrivals_per_hour"], (*path, "arrivals_per_hour"))
    handle = r.distribution(data["handle_time"], (*path, "handle_time"))
    patience = None
    if data.get("patience") is not None:
        patience = r.distribution(data["patience"], (*path, "patience"))
        if patience is None:
            return None
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        r.fail((*path, "priority"), f"expected an integer, got {_kind(priority)}")
        return None
    if name is None or channel is None or rates is None or handle is None:
        return None
    return QueueSpec(
        name=name,
        skills=skills,
        channel=channel,
        arrivals_per_hour=rates,
        handle_time=handle,
        patience=patience,
        priority=priority,
        preferred_skills=preferred,
    )


def _read_group(r: _Reader, value: Any, index: int) -> AgentGroupSpec | None:
    path: Path = ("agents", index)
    data = r.mapping(value, path, ("group", "count", "skills", "capacity", "weights", "total_capacity"))
    if not isinstance(value, dict):
        return None
    missing = [key for key in ("group", "count", "capacity") if key not in data]
    for key in missing:
        r.fail(path, f"missing {key}")
    if missing:
        return None
    name = r.text(data["group"], (*path, "group"))
    count = r.integer(data["count"], (*path, "count"), minimum=0)
    skills = r.levels(data.get("skills", {}), (*path, "skills"), low=1, high=10)
    capacity = r.levels(data["capacity"], (*path, "capacity"), low=0, high=None)
    weights = r.levels(data.get("weights", {}), (*path, "weights"), low=1, high=None)
    total = None
    if data.get("total_capacity") is not None:
        total = r.integer(data["total_capacity"], (*path, "total_capacity"), minimum=0)
    if name is None or count is None:
        return None
    return AgentGroupSpec(
        group=name, count=count, skills=skills, capacity=capacity, weights=weights, total_capacity=total
    )


def _read_policy(r: _Reader, value: Any) -> PolicySpec | None:
    if value is None:
        return PolicySpec()
    data = r.mapping(value, ("policy",), _POLICY_KEYS)
    if not isinstance(value, dict):
        return None
    settings: dict[str, Any] = {}
    accept_delay = 0.0
    ok = True
    for key, given in data.items():
        path: Path = ("policy", str(key))
        if key == "accept_delay_s":
            number = r.number(given, path)
            ok = ok and number is not None
            accept_delay = number or 0.0
            continue
        spec = _ROUTER_FIELDS.get(key)
        if spec is None:
            ok = False
            continue
        default = spec.default
        if key == "selection":
            choices = tuple(s.value for s in Selection)
            if given not in choices:
                r.fail(path, f"unknown selection {given!r}{_did_you_mean(str(given), choices)}")
                ok = False
                continue
            settings[key] = Selection(given)
        elif isinstance(default, bool):
            if not isinstance(given, bool):
                r.fail(path, f"expected true or false, got {_kind(given)}")
                ok = False
                continue
            settings[key] = given
        elif isinstance(default, int):
            number_i = r.integer(given, path, minimum=0)
            ok = ok and number_i is not None
            settings[key] = number_i
        elif given is None and default is not None:
            r.fail(path, "cannot be empty")
            ok = False
        else:
            settings[key] = None if given is None else r.number(given, path)
            ok = ok and (given is None or settings[key] is not None)
    if not ok:
        return None
    try:
        router = RouterConfig(**settings, explain=ExplainDetail.MINIMAL)
    except InvalidInput as exc:
        r.fail(("policy", exc.field or ""), exc.message)
        return None
    if accept_delay >= router.offer_timeout_s:
        r.fail(
            ("policy", "accept_delay_s"),
            f"agents would never answer before the offer times out ({router.offer_timeout_s:g} s)",
            hint="raise policy.offer_timeout_s or lower accept_delay_s",
        )
        return None
    return PolicySpec(router=router, accept_delay_s=accept_delay)


def _read_thresholds(r: _Reader, value: Any) -> tuple[float, ...] | None:
    path: Path = ("service_level_thresholds_s",)
    if not isinstance(value, list) or not value:
        r.fail(path, f"expected a non-empty list of seconds, got {_kind(value)}")
        return None
    numbers = [r.number(v, (*path, i)) for i, v in enumerate(value)]
    if any(n is None for n in numbers):
        return None
    return tuple(sorted({float(n) for n in numbers if n is not None}))


def _read_target(r: _Reader, value: Any) -> ServiceLevelTarget | None:
    path: Path = ("service_level_target",)
    data = r.mapping(value, path, ("threshold_s", "fraction"))
    if not data:
        return None
    threshold = r.number(data.get("threshold_s", 20), (*path, "threshold_s"))
    fraction = r.number(data.get("fraction", 0.8), (*path, "fraction"), positive=True)
    if fraction is not None and fraction >= 1:
        r.fail((*path, "fraction"), f"a fraction below 1, got {fraction}")
        return None
    if threshold is None or fraction is None:
        return None
    return ServiceLevelTarget(threshold_s=threshold, fraction=fraction)


_TOP_KEYS = ("run", "service_level_thresholds_s", "service_level_target", "queues", "agents", "policy")


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """Build a ``Scenario`` from YAML text; raise ``InvalidInput`` listing every problem found."""
    loaded = load_yaml(text, filename)
    problems = list(loaded.problems)
    if problems:
        raise _invalid(problems)
    r = _Reader(filename, loaded.source)
    data = r.mapping(loaded.data, (), _TOP_KEYS)
    if not isinstance(loaded.data, dict):
        raise _invalid(r.problems)
    for key in ("run", "queues", "agents"):
        if key not in data:
            r.fail((), f"missing {key}")
    run = _read_run(r, data["run"]) if "run" in data else None
    queues: list[QueueSpec] = []
    groups: list[AgentGroupSpec] = []
    for key, reader, into in (("queues", _read_queue, queues), ("agents", _read_group, groups)):
        items = data.get(key)
        if key in data and (not isinstance(items, list) or not items):
            r.fail((key,), f"expected a non-empty list, got {_kind(items)}")
            continue
        for index, item in enumerate(items or []):
            built = reader(r, item, index)
            if built is not None:
                into.append(built)  # type: ignore[arg-type]
    thresholds: tuple[float, ...] = (20.0,)
    if "service_level_thresholds_s" in data:
        thresholds = _read_thresholds(r, data["service_level_thresholds_s"]) or thresholds
    target = _read_target(r, data["service_level_target"]) if "service_level_target" in data else None
    if target is not None and target.threshold_s not in thresholds:
        thresholds = tuple(sorted({*thresholds, target.threshold_s}))
    policy = _read_policy(r, data.get("policy"))
    _cross_check(r, data, queues, groups)
    if r.problems or run is None or policy is None:
        raise _invalid(
            r.problems or [Problem("invalid_scenario", "invalid scenario").located(filename, None, None)]
        )
    return Scenario(
        run=run,
        queues=tuple(queues),
        agents=tuple(groups),
        policy=policy,
        thresholds_s=thresholds,
        target=target,
        source=filename,
    )


def _cross_check(
    r: _Reader, data: dict[str, Any], queues: list[QueueSpec], groups: list[AgentGroupSpec]
) -> None:
    for kind, names in (("queue", [q.name for q in queues]), ("agent group", [g.group for g in groups])):
        seen: set[str] = set()
        key = "queues" if kind == "queue" else "agents"
        attribute = "name" if kind == "queue" else "group"
        for index, name in enumerate(names):
            if name in seen:
                r.fail((key, index, attribute), f"duplicate {kind} {name!r}")
            seen.add(name)
    run = data.get("run")
    if isinstance(run, dict) and "hours" in run:
        for index, queue in enumerate(queues):
            if len(queue.arrivals_per_hour) not in (1, HOURS_PER_DAY):
                r.fail(("queues", index, "arrivals_per_hour"), "expected a number or 24 hourly rates")
    for index, queue in enumerate(queues):
        if not any(g.can_serve(queue) and g.count > 0 for g in groups) and groups:
            r.fail(
                ("queues", index),
                f"no agent can serve queue {queue.name!r} (skills {dict(queue.skills)} on {queue.channel})",
                hint="give a group these skills and capacity on this channel",
            )


def _invalid(problems: list[Problem]) -> InvalidInput:
    problems = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
    lines = [p.format() for p in problems]
    message = lines[0] if len(lines) == 1 else f"{len(lines)} problems in the scenario:\n" + "\n".join(lines)
    return InvalidInput(message, field=None, details={"problems": lines})


def load_scenario(path: str | FsPath) -> Scenario:
    """Read and validate a scenario file."""
    file = FsPath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput(f"{file}: no such scenario file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file}: cannot read: {exc}") from exc
    return parse_scenario(text, str(file))
