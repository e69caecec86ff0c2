"""Accounts: argon2 password hashes, expiring revocable bearer tokens, login throttling.

Tokens are random strings given once to the client; only their SHA-256 is
stored, so a database leak yields no usable token. Failed logins are counted
in the database (not in process memory) so throttling holds across web nodes.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.db import Base, BigId, UTCDateTime
from engine.directory import ROLES, Structure, User, user_by_email
from engine.errors import InvalidInput

TOKEN_LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 10
MAX_FAILURES_PER_ADDRESS = 50
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password: timing equaliser for unknown accounts")


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Base):
    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_email_at", "email", "at"), Index("ix_login_failure_address_at",
                                                                                 "address", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class TooManyAttempts(Exception):
    """Too many failed logins recently (HTTP 429)."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password too short", [{"field": "password",
                                                    "message": f"at least {MIN_PASSWORD_LENGTH} characters"}])
    return _hasher.hash(password)


def account_errors(session: Session, *, email: str, name: str, role: str, structure_id: int | None,
                   password: str | None) -> list[dict]:
    """Every field error of a new account at once (``[{field, message}]``); empty when it can be created."""
    email = email.strip().lower()
    errors = []
    if not name.strip():
        errors.append({"field": "name", "message": "required"})
    elif len(name.strip()) > 255:
        errors.append({"field": "name", "message": "at most 255 characters"})
    if "@" not in email or len(email) > 255:
        errors.append({"field": "email", "message": "not an email address"})
    elif user_by_email(session, email) is not None:
        errors.append({"field": "email", "message": "already used"})
    errors += placement_errors(session, role, structure_id)
    if password and len(password) < MIN_PASSWORD_LENGTH:
        errors.append({"field": "password", "message": f"at least {MIN_PASSWORD_LENGTH} characters"})
    return errors


def placement_errors(session: Session, role: str, structure_id: int | None) -> list[dict]:
    """A role the engine knows, and a structure that exists (required for everyone but administrators)."""
    errors = []
    if role not in ROLES:
        errors.append({"field": "role", "message": f"one of {', '.join(ROLES)}"})
    if structure_id is not None and session.get(Structure, structure_id) is None:
        errors.append({"field": "structure_id", "message": "no such structure"})
    if role != "admin" and structure_id is None:
        errors.append({"field": "structure_id", "message": "every professional belongs to a structure"})
    return errors


def create_user(session: Session, *, email: str, name: str, role: str, structure_id: int | None,
                password: str | None, now: datetime) -> User:
    errors = account_errors(session, email=email, name=name, role=role, structure_id=structure_id,
                            password=password)
    if errors:
        raise InvalidInput("the user cannot be created", errors)
    email = email.strip().lower()
    user = User(email=email, name=name.strip(), role=role, structure_id=structure_id, active=True,
                password_hash=hash_password(password) if password else None, created_at=now)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str, address: str, now: datetime) -> User | None:
    """The user if the password matches; failures are recorded and throttled."""
    email = (email or "").strip().lower()
    _check_throttle(session, email, address, now)
    user = user_by_email(session, email)
    usable = user is not None and user.active and user.password_hash
    # Unknown accounts cost one argon2 check too, so timing does not tell which emails exist.
    if _verify(user.password_hash if usable else _DUMMY_HASH, password or "") and usable:
        return user
    session.add(LoginFailure(email=email[:255], address=address[:64], at=now))
    return None


def issue_token(session: Session, user: User, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), created_at=now,
                         expires_at=now + TOKEN_LIFETIME))
    return token


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now or not row.user.active:
        return None
    return row.user


def revoke_token(session: Session, token: str, now: datetime) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now


def revoke_user_tokens(session: Session, user: User, now: datetime) -> int:
    """Revoke every live token of ``user`` (deactivation, new password); returns how many."""
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
                                                  ApiToken.expires_at > now)).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)


def _check_throttle(session: Session, email: str, address: str, now: datetime) -> None:
    since = now - THROTTLE_WINDOW
    by_email = session.scalar(select(func.count()).select_from(LoginFailure)
                              .where(LoginFailure.email == email, LoginFailure.at >= since))
    by_address = session.scalar(select(func.count()).select_from(LoginFailure)
                                .where(LoginFailure.address == address, LoginFailure.at >= since))
    if by_email >= MAX_FAILURES_PER_EMAIL or by_address >= MAX_FAILURES_PER_ADDRESS:
        raise TooManyAttempts("too many failed logins; try again in 15 minutes")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
