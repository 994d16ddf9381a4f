"""What validation reports: one ``Problem`` per finding, each with where and a hint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

__all__ = ["Path", "Problem", "Severity", "format_path", "format_problems", "summarize"]

Path: TypeAlias = tuple[str | int, ...]
Severity: TypeAlias = Literal["error", "warning"]


def format_path(path: Path) -> str:
    """``("queues", 2, "sla", "target_pct")`` → ``queues[2].sla.target_pct``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Problem:
    """One finding.  ``code`` names the rule (``unknown_skill``, ``missing_env``, …) for programs."""

    code: str
    message: str
    path: Path = ()
    hint: str | None = None
    severity: Severity = "error"
    at_key: bool = False  # point at the mapping key rather than its value
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def located(self, file: str | None, line: int | None, column: int | None) -> Problem:
        return replace(self, file=file, line=line, column=column)

    def format(self) -> str:
        """``FILE:LINE:COLUMN: path: message (hint: …)``; a warning says so."""
        where = self.file or "<manifest>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: "
        if self.severity == "warning":
            text += "warning: "
        if self.path:
            text += f"{format_path(self.path)}: "
        text += self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


def format_problems(problems: Iterable[Problem]) -> str:
    """One line per problem, in file order."""
    return "\n".join(p.format() for p in problems)


def summarize(problems: Iterable[Problem]) -> str:
    """``3 errors, 1 warning``."""
    items = list(problems)
    errors = sum(1 for p in items if p.severity == "error")
    warnings = len(items) - errors
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
