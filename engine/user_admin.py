"""What administrators do to accounts: create, move, deactivate, reset; each change in the admin log.

:mod:`engine.accounts` is what every request needs (hashes, tokens,
throttling); this module adds the rules that keep the service and its cases
consistent when an administrator changes an account:

- nobody deactivates their own account or changes their own role, so an
  administrator always remains;
- a professional who holds claimed tasks or follows cases keeps their
  structure and a case role (référent, encadrant) until a supervisor has
  handed that work over: moved elsewhere, they would keep tasks their
  former colleagues could no longer see to, on cases they could no longer open;
- deactivation takes effect at once: their tokens are revoked (a web session
  or token of an inactive user is refused anyway) and their claimed tasks go
  back to their structure's queue.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import accounts, admin_log, cases
from engine.access import CASE_ROLES
from engine.context import EngineContext
from engine.directory import Structure, User
from engine.errors import Conflict, InvalidInput
from engine.models import HumanTask
from engine.people import CareTeamMember

# No look-alike characters (0/o, 1/l/i): the password is read on a screen and typed elsewhere.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password() -> str:
    """Four groups of four characters, about 79 bits: ``k7pm-x3qd-9fze-w2hn``."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))


@dataclass(frozen=True)
class CaseWork:
    """What a professional is in the middle of: tasks claimed, cases followed as an active référent."""

    claimed_tasks: int
    followed_cases: int

    @property
    def any(self) -> bool:
        return bool(self.claimed_tasks or self.followed_cases)


def case_work(session: Session, user: User) -> CaseWork:
    claimed = session.scalar(select(func.count()).select_from(HumanTask)
                             .where(HumanTask.assignee == user.email, HumanTask.state == "claimed"))
    followed = session.scalar(select(func.count(func.distinct(CareTeamMember.case_id)))
                              .where(CareTeamMember.user_id == user.id, CareTeamMember.ended_at.is_(None)))
    return CaseWork(claimed or 0, followed or 0)


def create_user(session: Session, *, actor: User | None, email: str, name: str, role: str,
                structure_id: int | None, password: str | None, now: datetime) -> tuple[User, str | None]:
    """The new account, and the password generated for it when none was given (to be shown once)."""
    generated = None if password else generate_password()
    user = accounts.create_user(session, email=email, name=name, role=role, structure_id=structure_id,
                                password=password or generated, now=now)
    admin_log.record(session, actor=actor, action="user_created", at=now, user=user,
                     detail={"email": user.email, "role": role, "structure_id": structure_id,
                             "password": "generated" if generated else "chosen"})
    return user, generated


def update_user(session: Session, *, actor: User, user: User, role: str, structure_id: int | None,
                now: datetime) -> dict:
    """Give ``user`` another role or structure; returns ``{field: [before, after]}`` (empty: nothing changed)."""
    errors = accounts.placement_errors(session, role, structure_id)
    if errors:
        raise InvalidInput("the user cannot be changed", errors)
    changes = {name: [before, after] for name, before, after in
               (("role", user.role, role), ("structure_id", user.structure_id, structure_id)) if before != after}
    if not changes:
        return changes
    if "role" in changes and user.id == actor.id:
        raise Conflict("administrators cannot change their own role")
    leaves_cases = "structure_id" in changes or role not in CASE_ROLES
    if leaves_cases and case_work(session, user).any:
        raise Conflict("this user holds claimed tasks or follows cases: a supervisor must hand them over first")
    user.role = role
    user.structure = session.get(Structure, structure_id) if structure_id is not None else None
    admin_log.record(session, actor=actor, action="user_updated", at=now, user=user, detail=changes)
    return changes


@dataclass
class Deactivation:
    tokens_revoked: int = 0
    tasks_released: list[int] = field(default_factory=list)


def deactivate_user(session: Session, ctx: EngineContext, *, actor: User, user: User, now: datetime) -> Deactivation:
    """Refuse every login and token of ``user`` from now on; their claimed tasks return to their structure."""
    if user.id == actor.id:
        raise Conflict("administrators cannot deactivate their own account")
    outcome = Deactivation()
    if not user.active:
        return outcome
    user.active = False
    outcome.tokens_revoked = accounts.revoke_user_tokens(session, user, now)
    claimed = session.scalars(select(HumanTask.id).where(HumanTask.assignee == user.email,
                                                         HumanTask.state == "claimed").order_by(HumanTask.id))
    for task_id in list(claimed):
        cases.release_task(session, ctx, task_id, user=user.email)
        outcome.tasks_released.append(task_id)
    admin_log.record(session, actor=actor, action="user_deactivated", at=now, user=user,
                     detail={"tokens_revoked": outcome.tokens_revoked, "tasks_released": outcome.tasks_released})
    return outcome


def reactivate_user(session: Session, *, actor: User, user: User, now: datetime) -> None:
    if user.active:
        return
    user.active = True
    admin_log.record(session, actor=actor, action="user_reactivated", at=now, user=user)


def reset_password(session: Session, *, actor: User, user: User, password: str | None, now: datetime) -> str | None:
    """Set a new password (``password``, else a generated one, returned to be shown once); revoke tokens."""
    if password and len(password) < accounts.MIN_PASSWORD_LENGTH:
        raise InvalidInput("password too short", [{"field": "password", "message":
                                                   f"at least {accounts.MIN_PASSWORD_LENGTH} characters"}])
    generated = None if password else generate_password()
    user.password_hash = accounts.hash_password(password or generated)
    revoked = accounts.revoke_user_tokens(session, user, now)
    admin_log.record(session, actor=actor, action="password_reset", at=now, user=user,
                     detail={"password": "generated" if generated else "chosen", "tokens_revoked": revoked})
    return generated
