"""The hosts' replies in the review app: the Inbox queue, one mail shown as escaped text
(a hostile subject, HTML with a script and a tracker), staff's decisions through the
forms (CSRF required), and the notice's timeline with every mail both ways."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from db.models import CounterNotice, CounterNoticeState, Host, InboxMessage, InboxState, Role
from foundation.config import Config
from inbox.sources import import_path
from tests import inbox_mail as mk
from tests.test_inbox import NOW, config, replies, sent_world, write_maildir
from tests.test_notices_support import smtp, web  # noqa: F401
from tests.test_web import form_token, login_form

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ANALYST = ("ana", "analyst password 12")


@pytest.fixture
def inbox_world(Session, engine, smtp, web, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from webapp.accounts import create_user
    from webapp.app import create_app

    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    mails["hostile"] = mk.reply(
        frm="abuse@tube.example", subject="<script>alert(1)</script> =?UTF-8?Q?=0AX-Evil:_1?=",
        in_reply_to=w["tube"]["mid"], body="",
        html="<p>Nous avons <b>bien reçu</b> votre signalement.</p><script>alert(2)</script>"
             "<img src='https://tracker.example/p.gif' onerror='alert(3)'>")
    keys = write_maildir(tmp_path / "Maildir", mails)
    import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    with Session.begin() as s:
        create_user(s, ANALYST[0], ANALYST[1], role=Role.ANALYST)
        ids = {name: s.scalar(select(InboxMessage.id).where(InboxMessage.source.endswith(":" + key)))
               for name, key in keys.items()}
    app = create_app(engine, Config(timezone="Europe/Paris"))
    with TestClient(app) as client:
        yield {"client": client, "w": w, "ids": ids}


def test_inbox_queue_message_and_timeline(inbox_world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    client, w, ids = inbox_world["client"], inbox_world["w"], inbox_world["ids"]
    assert client.get("/inbox", follow_redirects=False).status_code == 303    # login first
    login_form(client, ANALYST)
    page = client.get("/inbox").text
    for name in ("refused_fr", "redirect_en", "dsn", "no_reference", "malformed", "huge"):
        assert f'id="mail-{ids[name]}"' in page, name
    assert f'id="mail-{ids["ack_en"]}"' not in page              # filed on its notice, not for staff
    assert "put-back window" in page and 'value="court_action"' in page and 'value="complaint"' in page

    hostile = client.get(f"/inbox/{ids['hostile']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile and "<script>" not in hostile
    assert "bien reçu votre signalement" in hostile
    shown = hostile.split('id="mail-text">', 1)[1].split("</pre>", 1)[0]
    assert "alert(2)" not in shown and "tracker.example" not in shown
    with Session() as s:
        subject = s.get(InboxMessage, ids["hostile"]).subject or ""
    # The encoded line break is read, then flattened: one line, nothing looks like a header.
    assert "\n" not in subject and "\r" not in subject and "=?" not in subject
    # The original mail is there too, as escaped source text.
    assert 'id="mail-source"' in hostile and "&lt;script&gt;alert(2)" in hostile
    src = client.get(f"/inbox/{ids['hostile']}/source.eml")
    assert src.status_code == 200 and src.headers["content-type"] == "application/octet-stream"
    assert src.headers["content-disposition"].startswith("attachment;") and b"alert(2)" in src.content
    big = client.get(f"/inbox/{ids['huge']}").text
    assert "too large: header kept only" in big

    # The notice's timeline: our notice out, the host's replies in, the counter-notice case.
    tl = client.get(f"/notices/{w['usvid']['id']}").text
    assert 'id="timeline"' in tl and "→ sent" in tl and "← received" in tl
    assert "USV-2026-88121" in tl and "counter-notice (dmca) open" in tl
    assert tl.index("→ sent") < tl.index("← received")
    # The same, as JSON.
    api = client.get(f"/api/notices/{w['usvid']['id']}/timeline").json()
    assert api[0]["direction"] == "out" and {"in", "case"} <= {e["direction"] for e in api}
    assert any(e["what"] == "ack" and e["inbox_message_id"] == ids["ack_en"] for e in api)
    queue = client.get("/api/inbox").json()
    assert {m["id"] for m in queue["for_staff"]} >= {ids["dsn"], ids["no_reference"]}
    assert {c["regime"] for c in queue["counter_notices_open"]} == {"dmca", "dsa"}


def test_inbox_actions_need_csrf_and_are_audited(inbox_world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    client, w, ids = inbox_world["client"], inbox_world["w"], inbox_world["ids"]
    login_form(client, ANALYST)
    page = client.get(f"/inbox/{ids['redirect_fr']}").text
    token = form_token(page)
    assert client.post(f"/inbox/{ids['redirect_fr']}/accept-contact", data={}).status_code == 403
    r = client.post(f"/inbox/{ids['redirect_fr']}/accept-contact", data={"csrf_token": token})
    assert r.status_code == 200 and "abuse@hebergeur-reel.example accepted" in r.text
    with Session() as s:
        assert s.scalar(select(Host.abuse_contact).where(Host.name == "tube")) == "abuse@hebergeur-reel.example"
    # Accepting a contact from a mail that offers none is refused, saying why.
    r = client.post(f"/inbox/{ids['refused_fr']}/accept-contact", data={"csrf_token": token})
    assert r.status_code == 422 and "offers no new contact" in r.text
    r = client.post(f"/inbox/{ids['refused_fr']}/close", data={"csrf_token": token, "note": "answered"})
    assert r.status_code == 200
    r = client.post(f"/inbox/{ids['no_reference']}/file",
                    data={"csrf_token": token, "notice_id": str(w["usvid"]["id"]), "kind": "ack"})
    assert r.status_code == 200 and "filed under notice" in r.text
    r = client.post(f"/inbox/{ids['no_reference']}/file", data={"csrf_token": token, "notice_id": "x", "kind": "ack"})
    assert r.status_code == 422
    with Session() as s:
        cn = s.scalar(select(CounterNotice).where(CounterNotice.regime == "dmca"))
        dsa = s.scalar(select(CounterNotice).where(CounterNotice.regime == "dsa"))
    r = client.post(f"/counter-notices/{cn.id}/decide", data={"csrf_token": token, "decision": "complaint"})
    assert r.status_code == 422
    r = client.post(f"/counter-notices/{cn.id}/decide",
                    data={"csrf_token": token, "decision": "court_action", "note": "filed"})
    assert r.status_code == 200 and "court action recorded" in r.text
    r = client.post(f"/counter-notices/{dsa.id}/decide", data={"csrf_token": token, "decision": "complaint"})
    assert r.status_code == 200
    with Session() as s:
        assert s.get(CounterNotice, cn.id).state is CounterNoticeState.COURT_ACTION
        assert s.get(CounterNotice, cn.id).decided_by == ANALYST[0]
        assert s.get(InboxMessage, ids["refused_fr"]).state is InboxState.CLOSED
        assert s.get(InboxMessage, ids["no_reference"]).notice_id == w["usvid"]["id"]
    page = client.get("/inbox").text
    assert not re.search(rf'id="mail-{ids["refused_fr"]}"', page) and 'id="cases"' not in page
