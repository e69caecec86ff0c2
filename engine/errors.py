"""Errors the engine raises on purpose; the API maps each to an HTTP status."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


class EngineError(Exception):
    """Base class: a refusal the caller can explain to a user."""


class NotFound(EngineError):
    """The object does not exist, or the caller may not see it (HTTP 404)."""


class Conflict(EngineError):
    """The command lost a race or breaks an invariant (HTTP 409)."""


class InvalidInput(EngineError):
    """The request is well-formed but its content is refused (HTTP 422)."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class Problem:
    """One finding of deploy-time validation or lint, pointing at the diagram."""

    rule: str
    message: str
    element_id: str | None = None
    line: int | None = None
    severity: str = field(default="error")  # "error" blocks the deploy, "warning" does not
    # Which of the rule's messages this is, and the values in it: a French page words it from these
    # (web/pathway_wording.py); ``message`` is the English of the API.
    code: str | None = None
    params: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return asdict(self)


class DeployError(InvalidInput):
    """A pathway was refused at deploy; nothing was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        summary = "; ".join(_describe(p) for p in problems[:5])
        super().__init__(f"pathway refused: {summary}", [p.to_dict() for p in problems])


class TooLarge(InvalidInput):
    """An upload is over the size bound (HTTP 413)."""


def _describe(problem: Problem) -> str:
    where = []
    if problem.element_id:
        where.append(f"element {problem.element_id}")
    if problem.line:
        where.append(f"line {problem.line}")
    prefix = f"[{problem.rule}] " + (f"({', '.join(where)}) " if where else "")
    return prefix + problem.message
