"""Staff accounts: argon2 password hashes, roles, login checks.

Used by ``vigie users add/list`` and by the review app's login. Passwords are hashed
with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile); a hash made with
older parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.auditchain import audit
from db.models import LoginAttempt, Role, User
from foundation.errors import Duplicate, InvalidInput, LoginThrottled, NotFound

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
    """Login attempts per account and per client address in a sliding window, kept in the
    database (``login_attempts``) so the limit holds across restarts and across several
    ``vigie serve`` processes.

    After ``per_account`` failures for a user name, or ``per_ip`` from one address, within
    ``window_s``, further attempts are refused until the window has moved on (ASVS 2.2.1).
    An attempt is *reserved* before its password is checked: under a lock held for the
    account and the address (``_lock``), the rows in the window are counted and the
    attempt's row is committed only if the count is within the limit. Reservations never
    overlap, so at most ``per_account`` passwords of one account are ever checked per
    window, whatever the concurrency (40 parallel requests once had 37 checked; counting
    after committing, with refused rows deleted, once let 9 through). A refused attempt
    leaves no row (it checked nothing); a failed one stays as the failure; a success
    deletes its own row and takes the account off its earlier failures, which still count
    for their address: the account's count starts again only with its right password.
    Used by ``webapp.app`` on /login and /api/login.
    """

    def __init__(self, sessions: sessionmaker[Session], per_account: int = 5, per_ip: int = 20,
                 window_s: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        self.sessions, self.clock = sessions, clock
        self.per_account, self.per_ip, self.window_s = per_account, per_ip, window_s
        self._swept = 0.0

    @staticmethod
    def account_key(username: str) -> str:
        return hashlib.sha256(username.lower().encode("utf-8", "surrogatepass")).hexdigest()

    def reserve(self, username: str, ip: str) -> int:
        """Record an attempt before its password is checked; its id, or LoginThrottled
        (with the seconds to wait) when the account or the address is over its limit."""
        now = self.clock()
        key, ip = self.account_key(username), ip[:64]
        since = now - self.window_s
        waits = [0.0]
        with self.sessions.begin() as s:
            # One reservation at a time per account and address: count and insert under
            # a lock, so no two attempts count without seeing each other.
            row = LoginAttempt(account=key, ip=ip, at=now)
            self._lock(s, key, ip, row)
            for column, value, limit in ((LoginAttempt.account, key, self.per_account),
                                         (LoginAttempt.ip, ip, self.per_ip)):
                times = sorted(s.scalars(select(LoginAttempt.at).where(
                    column == value, LoginAttempt.at > since, LoginAttempt.id != row.id)))
                if len(times) >= limit:
                    waits.append(times[-limit] + self.window_s - now)
            if max(waits) > 0:
                # Refused: nothing was checked, so nothing stays (the transaction's row,
                # which no other attempt could see, is rolled back).
                s.rollback()
                raise LoginThrottled(max(waits))
            mine = row.id
        self._sweep(now)
        return mine

    @staticmethod
    def _lock(s: Session, key: str, ip: str, row: LoginAttempt) -> None:
        """Serialise reservations. PostgreSQL: transaction advisory locks on the account
        and the address (in a fixed order). SQLite: the attempt's own row is written
        first, which takes the database's write lock until the transaction ends."""
        if s.get_bind().dialect.name == "postgresql":
            for name in sorted((f"a:{key}", f"i:{ip}")):
                lock_id = int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:8], "big",
                                         signed=True)
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
        s.add(row)
        s.flush()

    def succeeded(self, attempt: int, username: str) -> None:
        """The password was right: the account's count starts again (the address's does not)."""
        with self.sessions.begin() as s:
            s.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt))
            s.execute(update(LoginAttempt).where(LoginAttempt.account == self.account_key(username))
                      .values(account=None))

    def _sweep(self, now: float) -> None:
        # Rows past the window count for nothing: deleted once a minute per process, in a
        # transaction of their own (a failure here never refuses a login).
        if now - self._swept < 60:
            return
        self._swept = now
        try:
            with self.sessions.begin() as s:
                s.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - self.window_s))
        except SQLAlchemyError:
            pass


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
    *, email: str | None = None, actor: str = "cli", org_id: int | None = None,
) -> User:
    """Add a staff account. Raises InvalidInput for a bad name or short password,
    Duplicate when the name is taken.

    ``org_id``: the rights holder or agent the user works for; they see only its titles
    and what hangs on them. Administrators are the installation's (they see all and
    manage sites, hosts and users), so a tenant's user is never one."""
    if not USERNAME_RE.match(username):
        raise InvalidInput(f"bad user name {username!r}: letters, digits and . _ @ - only")
    check_password_policy(password)
    role = parse_role(role)
    if org_id is not None and role is Role.ADMIN:
        raise InvalidInput("an administrator is the installation's: a rights holder's or agent's user "
                           "is an analyst")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Duplicate(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, email=email, org_id=org_id)
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", "user", user.id, None,
          {"username": username, "role": role.value, "email": email, "org_id": org_id})
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
    from webapp.sessions import revoke_user  # here: the web's session layer loads Starlette

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
    from webapp.sessions import revoke_user

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
    # A name no account can have (NUL, lone surrogates, ...) never reaches the database.
    user = session.scalar(select(User).where(User.username == username)) if USERNAME_RE.fullmatch(username) else None
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
