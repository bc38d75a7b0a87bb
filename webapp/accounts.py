"""Staff accounts: argon2 password hashes, roles, login checks.

Used by ``vigie users add/list`` and by the review app's login. Passwords are hashed
with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile); a hash made with
older parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Role, User
from vigie.errors import Duplicate, InvalidInput
from webapp.actions import audit

_hasher = PasswordHasher()

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD = 10
# Verified when the user does not exist, so a wrong name costs as much time as a wrong
# password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not a real password, only here for timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def parse_role(role: str | Role) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {role!r} (known: {', '.join(r.value for r in Role)})") from None


def create_user(
    session: Session, username: str, password: str, role: str | Role = Role.ANALYST,
    *, email: str | None = None, actor: str = "cli",
) -> User:
    """Add a staff account. Raises InvalidInput for a bad name or short password,
    Duplicate when the name is taken."""
    if not USERNAME_RE.match(username):
        raise InvalidInput(f"bad user name {username!r}: letters, digits and . _ @ - only")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password too short: at least {MIN_PASSWORD} characters")
    role = parse_role(role)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Duplicate(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, email=email)
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", "user", user.id, None,
          {"username": username, "role": role.value, "email": email})
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (same cost either way)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
