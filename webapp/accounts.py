"""Staff accounts: argon2 password hashes, roles, login checks.

Used by ``vigie users add/list`` and by the review app's login. Passwords are hashed
with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile); a hash made with
older parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Role, User
from vigie.errors import Duplicate, InvalidInput, NotFound
from webapp.actions import audit
from webapp.sessions import revoke_user

_hasher = PasswordHasher()

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD = 10


@cache
def dummy_hash() -> str:
    """Verified when the user does not exist, so a wrong name costs as much time as a
    wrong password (no user enumeration by timing). Made on first use, not at import:
    hashing is slow on purpose and CLI commands that import this module never log in;
    the web app makes it at start-up (``webapp.app.create_app``)."""
    return _hasher.hash("not a real password, only here for timing")


# Refused whatever their length: the most common passwords (zxcvbn's list of leaked
# passwords, by frequency), compared case-insensitively (OWASP ASVS 2.1.7).
COMMON_PASSWORDS_REFUSED = 3000
_common: frozenset[str] | None = None


def common_passwords() -> frozenset[str]:
    global _common
    if _common is None:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS

        _common = frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS_REFUSED])
    return _common


class LoginThrottle:
    """Failed logins per account and per client address, in a sliding window.

    Held by the app process (one review app serves one deployment): after ``per_account``
    failures for a user name, or ``per_ip`` from one address, within ``window_s``, further
    attempts are refused until the window has moved on (ASVS 2.2.1). A success clears the
    account's count. Used by ``webapp.app`` on /login and /api/login.
    """

    def __init__(self, per_account: int = 5, per_ip: int = 20, window_s: float = 900.0) -> None:
        self.per_account, self.per_ip, self.window_s = per_account, per_ip, window_s
        self._fails: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(key, []) if t > now - self.window_s]
        if times:
            self._fails[key] = times
        else:
            self._fails.pop(key, None)
        return times

    def wait_s(self, username: str, ip: str, now: float) -> float:
        """Seconds before this user name may be tried from this address (0: go ahead)."""
        waits = [0.0]
        for key, limit in ((f"u:{username.lower()}", self.per_account), (f"ip:{ip}", self.per_ip)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[-limit] + self.window_s - now)
        return max(waits)

    def failed(self, username: str, ip: str, now: float) -> None:
        for key in (f"u:{username.lower()}", f"ip:{ip}"):
            self._fails.setdefault(key, []).append(now)

    def succeeded(self, username: str) -> None:
        self._fails.pop(f"u:{username.lower()}", None)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def parse_role(role: str | Role) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {role!r} (known: {', '.join(r.value for r in Role)})") from None


def check_password_policy(password: str) -> None:
    """Raise InvalidInput for a password too short or among the most common ones."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password too short: at least {MIN_PASSWORD} characters")
    if password.lower() in common_passwords():
        raise InvalidInput(f"password refused: one of the {COMMON_PASSWORDS_REFUSED} most common passwords")


def create_user(
    session: Session, username: str, password: str, role: str | Role = Role.ANALYST,
    *, email: str | None = None, actor: str = "cli",
) -> User:
    """Add a staff account. Raises InvalidInput for a bad name or short password,
    Duplicate when the name is taken."""
    if not USERNAME_RE.match(username):
        raise InvalidInput(f"bad user name {username!r}: letters, digits and . _ @ - only")
    check_password_policy(password)
    role = parse_role(role)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Duplicate(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, email=email)
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", "user", user.id, None,
          {"username": username, "role": role.value, "email": email})
    return user


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def set_active(session: Session, user_id: int, active: bool, *, actor: str) -> User:
    """Enable or disable an account. Disabling ends every live session of the user in
    this same transaction: a stolen or forgotten cookie stops working at once."""
    user = _user(session, user_id)
    if not active and user.username == actor:
        raise InvalidInput("you cannot disable your own account")
    before = {"active": user.active}
    user.active = active
    ended = revoke_user(session, user.id) if not active else 0
    session.flush()
    audit(session, actor, "user.enable" if active else "user.disable", "user", user.id, before,
          {"active": active, "sessions_ended": ended})
    return user


def set_password(session: Session, user_id: int, password: str, *, actor: str) -> User:
    """Give a user a new password (same policy as at creation). Every live session of the
    user ends now, the one of whoever changed it included (the caller may start a new
    one, see ``webapp.app``). The audit row says that it changed, never the hash."""
    check_password_policy(password)
    user = _user(session, user_id)
    user.password_hash = hash_password(password)
    ended = revoke_user(session, user.id)
    session.flush()
    audit(session, actor, "user.password", "user", user.id, None, {"sessions_ended": ended})
    return user


def change_own_password(session: Session, user: User, current: str, new: str) -> User:
    """A user's own change: the current password first (ASVS 2.1.5)."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidInput("the current password is wrong") from None
    if new == current:
        raise InvalidInput("the new password is the current one")
    return set_password(session, user.id, new, actor=user.username)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (same cost either way)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        try:
            _hasher.verify(dummy_hash(), password)
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
