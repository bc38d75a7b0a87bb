"""The smaller holes of issue 13, through the real app (TestClient) and the real CLI.

- The admin host form refuses an abuse contact with CR/LF, as ``vigie hosts add`` does
  (one check, ``notices.hosts.check_contact``).
- Bidi controls (U+202E and friends) and zero-width characters in crawled page titles are
  neutralised on the review page and in the daily report, as in a mail subject.
- Every page behind the login says ``Cache-Control: no-store``; public pages and static
  files may be cached.
- The static ``--public`` pages carry a CSP (a ``<meta>`` element: they are served by
  any web server).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Candidate, Host, ReferenceVideo, Report, Title
from tests.figures import Figures
from tests.test_web import ADMIN, app, client, form_token, login_form, world  # noqa: F401
from foundation.config import Config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VIGIE = str(Path(sys.executable).parent / "vigie")
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u200b\u200d\u061c"


def test_host_contact_with_crlf_refused_by_form_and_cli(client: Any, Session, db_url: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    token = login_form(client, ADMIN)
    with Session() as s:
        host = s.scalars(select(Host).where(Host.name == "vidhost")).one()
    evil = "abuse@vidhost.test\r\nBcc: everyone@victim.test"
    r = client.post(f"/hosts/{host.id}", data={"csrf_token": token, "abuse_contact": evil, "channel": "email"})
    assert r.status_code == 422 and "plain email address" in r.text, r.text
    ok = client.post(f"/hosts/{host.id}", data={"csrf_token": token, "abuse_contact": " abuse2@vidhost.test ",
                                                "channel": "email"}, follow_redirects=False)
    assert ok.status_code == 303
    with Session() as s:
        assert s.get(Host, host.id).abuse_contact == "abuse2@vidhost.test"
    cli = subprocess.run([VIGIE, "--db", db_url, "hosts", "add", "other", "--domain", "other.test",
                          "--contact", evil], capture_output=True, text=True)
    assert cli.returncode == 1 and "plain email address" in cli.stderr, cli.stderr


def test_bidi_controls_in_page_titles_are_neutralised(client: Any, Session, world, figures: Figures) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    hostile = "Big Buck Bunny \u202e4pm.exe\u202c \u2066admin\u2069 zero\u200bwidth"
    with Session.begin() as s:
        for c in s.scalars(select(Candidate)):
            c.title_text = hostile
    login_form(client, ADMIN)
    page = client.get("/review", params={"state": "all"}).text
    from reports.daily import one_line

    shown = one_line(hostile)
    assert "Big Buck Bunny 4pm.exe admin zero width" == shown
    found = sorted({f"U+{ord(ch):04X}" for ch in page if ch in BIDI})
    figures.record("web: bidi and zero-width controls from page titles on the review page",
                   len(found), "0", not found)
    assert not found, found
    assert "4pm.exe" in page


def test_pages_behind_the_login_are_not_cached(client: Any, Session, world, tmp_path: Path,  # type: ignore[no-untyped-def]  # noqa: F811
                                               figures: Figures) -> None:
    login_form(client, ADMIN)
    from datetime import date, datetime, timezone

    video = tmp_path / "ref.mp4"
    video.write_bytes(b"\x00" * 64)
    with Session.begin() as s:
        s.add(Report(day=date(2026, 3, 10), generated_at=datetime.now(timezone.utc), html="<p>r</p>",
                     files=[], summary={}, mailed_to=None))
        title = s.scalars(select(Title)).first()
        ref = ReferenceVideo(title_id=title.id, sha256="0" * 64, path=str(video), duration_s=1.0, fps=25.0,
                             width=16, height=16, size_bytes=64, algorithm="test", frame_count=0,
                             hashes=b"", times=b"")
        s.add(ref)
        s.flush()
        ref_id = ref.id
    paths = ["/reports/2026-03-10", "/titles", "/sites", "/hosts", "/account", f"/media/reference/{ref_id}",
             "/review", "/notices", "/audit", "/users", "/reports", "/login", "/api/session"]
    missing = []
    for p in paths:
        r = client.get(p)
        assert r.status_code == 200, (p, r.status_code)
        if r.headers.get("cache-control") != "no-store":
            missing.append(p)
    figures.record("web: authenticated pages without Cache-Control: no-store", len(missing), "0", not missing)
    assert not missing, missing
    # Public pages and static files stay cacheable (no no-store forced on them).
    assert client.get("/public/").headers.get("cache-control") is None
    assert client.get("/static/app.css").headers.get("cache-control") is None


def test_static_public_pages_carry_a_csp(Session, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from webapp.public import export_static
    from webapp.security import STATIC_CSP

    from db.models import Title

    with Session.begin() as s:
        for t in s.scalars(select(Title)):
            t.published = True  # only published titles get a page
    with Session() as s:
        files = export_static(s, Config(notifier={"legal_name": "Films du Phare"}), tmp_path / "pub")
    pages = [f for f in files if f.suffix == ".html"]
    assert len(pages) >= 2
    for f in pages:
        html = f.read_text()
        meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
        assert meta and meta.group(1).replace("&#39;", "'") == STATIC_CSP, f.name
        # Before any element that loads something.
        assert html.index("Content-Security-Policy") < html.index("<link")
