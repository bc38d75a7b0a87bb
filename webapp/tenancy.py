"""Staff scope: a user of a rights holder or an agent sees and changes only what hangs on
its titles; the installation's own staff (a user of no organisation) see everything.

A title is in an organisation's scope by ``db.rights.scope_titles`` (its own rights, and
for an agent its principals' titles its mandates cover). What hangs on a title: its
matches (and their frames, screenshots and reference media), allowed material of it, and
the notices whose every URL is about a title in scope (an agent's notice naming two
principals' works is its own, not either principal's), and the daily report made from
those alone (the archived installation-wide report, its figures and the crawl health are
the installation staff's). Anything out of scope answers 404, exactly as an id
that does not exist, so a tenant cannot even learn what ids others have.

Every route that takes an id or lists rows goes through here, and so does every action of
``webapp.actions`` that changes one (tests/test_tenancy.py holds two tenants against
every such route).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from db.models import Match, Notice, NoticeItem, ReferenceVideo, User
from db.rights import scope_titles
from foundation.errors import NotFound


class Scope:
    """What one user may see: everything (``org_id`` None) or one organisation's titles."""

    def __init__(self, user: User) -> None:
        self.org_id = user.org_id

    @property
    def everything(self) -> bool:
        return self.org_id is None

    def titles(self) -> Any:
        assert self.org_id is not None
        return scope_titles(self.org_id)

    # ------------------------------------------------------------------ SQL filters

    def match_clause(self) -> ColumnElement[bool] | None:
        if self.everything:
            return None
        return Match.title_id.in_(self.titles())

    def notice_clause(self) -> ColumnElement[bool] | None:
        """The notice has items, and none is about a title out of scope."""
        if self.everything:
            return None
        item_match = and_(NoticeItem.notice_id == Notice.id, NoticeItem.match_id == Match.id)
        outside = exists().where(item_match, or_(Match.title_id.is_(None), Match.title_id.not_in(self.titles())))
        return and_(exists().where(NoticeItem.notice_id == Notice.id), ~outside)

    def reference_clause(self) -> ColumnElement[bool] | None:
        if self.everything:
            return None
        return ReferenceVideo.title_id.in_(self.titles())

    # ------------------------------------------------------------------ one row

    def sees_title(self, session: Session, title_id: int | None) -> bool:
        if self.everything:
            return True
        return title_id is not None and title_id in set(session.scalars(self.titles()))

    def match(self, session: Session, match_id: int) -> Match:
        m = session.get(Match, match_id)
        if m is None or not self.sees_title(session, m.title_id):
            raise NotFound(f"no match with id {match_id}")
        return m

    def notice(self, session: Session, notice_id: int) -> Notice:
        n = session.get(Notice, notice_id)
        clause = self.notice_clause()
        if n is None or (clause is not None and not session.scalar(
                select(exists().where(Notice.id == notice_id, clause)))):
            raise NotFound(f"no notice with id {notice_id}")
        return n

    def reference(self, session: Session, ref_id: int) -> ReferenceVideo | None:
        r = session.get(ReferenceVideo, ref_id)
        if r is None or not self.sees_title(session, r.title_id):
            return None
        return r

    def sees_reports(self) -> bool:
        """The archived daily report covers every title: the installation staff's only
        (a tenant reads the day's report made from its own titles' rows)."""
        return self.everything


def visible_allowed(session: Session, scope: Scope) -> list[ReferenceVideo]:
    """Allowed material the user may see: all of it for the installation's staff; for a
    tenant, that of its own titles (material of no title is nobody's to show them)."""
    from stages.catalog import list_allowed

    rows = list_allowed(session)
    if scope.everything:
        return rows
    mine = set(session.scalars(scope.titles()))
    return [r for r in rows if r.title_id in mine]
