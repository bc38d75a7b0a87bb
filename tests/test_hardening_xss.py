"""XSS payload corpus through every HTML Vigie writes: no new elements, no scripts.

Page titles and URLs come from pirate pages. Each payload of a classic corpus goes into
a candidate's ``title_text`` and ``page_url`` (and the notice title, host and error text
where a surface shows them), then the notice templates (every regime and language), the
daily report and the web app's pages are rendered. Each output is parsed with
``html.parser`` and compared with the same surface rendered from benign text: no tag
appears more often than in the benign render, no ``on*`` attribute, no ``<script>``
beyond the benign ones, no ``javascript:``/``vbscript:``/``data:text`` link.
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Candidate, Host, Match, Notice, ReferenceVideo, Title
from db.session import make_engine, sessionmaker_for, upgrade
from notices.build import make_notice
from notices.hosts import Contact
from notices.regimes import DELISTING, DMCA, DSA
from reports.daily import build_report
from tests.figures import Figures
from tests.test_notices_support import T0, add_host, add_match, add_title, make_config, machine_documents_valid  # noqa: F401
from tests.test_report import DAY, build_world
from tests.test_web import add_allowed
from foundation.config import Config
from foundation.errors import NoticeInvalid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://xss.test/xss.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "\"><script>alert(1)</script>",
    "'><script>alert(1)</script>",
    "\" onmouseover=\"alert(1)",
    "' onmouseover='alert(1)",
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
    "<base href=http://xss.test/>",
    "<link rel=stylesheet href=http://xss.test/x.css>",
    "<style>@import 'http://xss.test/x.css';</style>",
    "{{7*7}}{% raw %}<script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\u202e<script>alert(1)</script>",
    "<img src=\"x` `<script>alert(1)</script>\"` `>",
    "<video><source onerror=alert(1)>",
]
URL_PAYLOADS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://x.test/\"><script>alert(1)</script>",
    "http://x.test/' onmouseover='alert(1)",
    "http://x.test/?q=<img src=x onerror=alert(1)>",
]
BENIGN = "benign page title"
BENIGN_URL = "http://linkz.test/watch/benign"
URL_ATTRS = {"href", "src", "action", "formaction", "data", "poster", "xlink:href"}


class _Shape(HTMLParser):
    """What an HTML document contains: its tags and any script-carrying attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.bad.append(f"<{tag} {name}=...>")
            v = "".join(ch for ch in (value or "") if ch > " ").lower()
            if name in URL_ATTRS and v.startswith(("javascript:", "vbscript:", "data:text")):
                self.bad.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


def shape(html: str) -> _Shape:
    p = _Shape()
    p.feed(html)
    p.close()
    return p


class Tally:
    def __init__(self) -> None:
        self.renders = 0
        self.refused = 0
        self.failures: list[str] = []

    def check(self, surface: str, payload: str, html: str, baseline: _Shape) -> None:
        self.renders += 1
        got = shape(html)
        extra = {t: n for t, n in got.tags.items() if n > baseline.tags.get(t, 0)}
        new_bad = [b for b in got.bad if b not in baseline.bad]
        if extra or new_bad:
            self.failures.append(f"{surface} with {payload!r}: extra tags {extra}, {new_bad}")


def _url_for(payload: str) -> str:
    return payload if payload in URL_PAYLOADS else f"http://linkz.test/watch/x?t={payload}"


def _cases() -> list[tuple[str, str]]:
    """(title text, page URL) pairs: every payload as a title and inside a URL, every URL payload."""
    return [(p, _url_for(p)) for p in PAYLOADS] + [(BENIGN, u) for u in URL_PAYLOADS]


@pytest.fixture
def sessionmaker(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = make_engine(f"sqlite:///{tmp_path / 'xss.db'}")
    upgrade(eng)
    yield sessionmaker_for(eng)
    eng.dispose()


def test_xss_corpus_through_notice_templates(sessionmaker, figures: Figures) -> None:  # type: ignore[no-untyped-def]
    tally = Tally()
    config = make_config()
    with sessionmaker.begin() as s:
        host = add_host(s, "videohost")
        baselines: dict[str, _Shape] = {}

        def notice(title: str, url: str, regime: Any, lang: str, n: int) -> str:
            try:
                with s.begin_nested():
                    t = add_title(s, title)
                    m = add_match(s, t, host, f"{url}#{n}")
                    m.candidate.title_text = title
                    nt = make_notice(s, config, host=host, matches=[m], kind="notice", regime=regime,
                                     language=lang, now=T0,
                                     contact=Contact("abuse@videohost.example", "configured"))
                    return nt.body_html or ""
            except NoticeInvalid:
                # A javascript: "infringing URL" is no location at all: the notice is
                # refused with a clear error, so there is no HTML to attack.
                tally.refused += 1
                return ""

        n = 0
        for regime in (DMCA, DSA, DELISTING):
            for lang in ("en", "fr"):
                key = f"notice {regime.name}.{lang}"
                n += 1
                baselines[key] = shape(notice(BENIGN, BENIGN_URL, regime, lang, n))
                for title, url in _cases():
                    n += 1
                    tally.check(key, f"{title} | {url}", notice(title, url, regime, lang, n), baselines[key])
    _record(figures, "notice templates", tally)


def _set_hostile(s: Any, w: dict[str, Any], title: str, url: str) -> None:
    c = s.get(Candidate, w["c_hostile"])
    c.title_text, c.page_url = title, url
    f = s.get(Candidate, w["c_formula"])
    f.title_text, f.page_url = title, url
    held = s.get(Notice, w["n_held"])
    held.subject, held.body_text, held.last_error = title, f"{title}\n{url}", title
    s.get(Notice, w["n_failed"]).last_error = title
    s.get(Host, w["locker"]).abuse_contact = title
    # Allowed material: its file name, and the page of a copy made only of it.
    s.get(ReferenceVideo, w["trailer"]).path = f"/masters/{title}"
    s.get(Match, w["allowed_match"]).candidate.title_text = title
    # Public pages exist only for published titles: publish them to render them.
    for t in s.scalars(select(Title)):
        t.published = True


def _world(sessionmaker) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with sessionmaker.begin() as s:
        w = build_world(s)
        add_allowed(s, w)
        ids = {k: getattr(v, "id", v) for k, v in w.items()}
        ids["c_hostile"] = w["review_hostile"].candidate_id
        ids["c_formula"] = w["review_formula"].candidate_id
    return ids


def test_xss_corpus_through_the_daily_report(sessionmaker, tmp_path: Path, figures: Figures) -> None:  # type: ignore[no-untyped-def]
    tally = Tally()
    w = _world(sessionmaker)
    config = Config(timezone="Europe/Paris")

    def report(title: str, url: str) -> str:
        with sessionmaker.begin() as s:
            _set_hostile(s, w, title, url)
        with sessionmaker.begin() as s:
            return build_report(s, config, DAY, tmp_path / "out").html.read_text(encoding="utf-8")

    baseline = shape(report(BENIGN, BENIGN_URL))
    for title, url in _cases():
        tally.check("daily report", f"{title} | {url}", report(title, url), baseline)
    _record(figures, "daily report", tally)


def test_xss_corpus_through_the_web_app(sessionmaker, figures: Figures) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.test_web import ADMIN, login_form
    from webapp.app import create_app

    w = _world(sessionmaker)
    engine = sessionmaker.kw["bind"]
    app = create_app(engine, Config(timezone="Europe/Paris", notifier={"legal_name": "Films du Phare"},
                                    web={"brand": "Phare Films"}), secret_key="k" * 48)
    with sessionmaker() as s:
        title_id = s.scalar(select(Title.id).order_by(Title.id))
    pages: list[str] = ["/review", "/notices", f"/notices/{w['n_held']}", f"/notices/{w['n_failed']}",
                        "/titles", "/sites", "/hosts", "/audit", "/public", f"/public/titles/{title_id}",
                        "/allowed", "/review?state=allowed"]
    tally = Tally()
    with TestClient(app) as client:
        login_form(client, ADMIN)

        def render_all(title: str, url: str) -> dict[str, str]:
            with sessionmaker.begin() as s:
                _set_hostile(s, w, title, url)
            out = {}
            for p in pages:
                r = client.get(p)
                assert r.status_code == 200, (p, r.status_code, r.text[:300])
                out[p] = r.text
            return out

        baselines = {p: shape(html) for p, html in render_all(BENIGN, BENIGN_URL).items()}
        for title, url in _cases():
            for p, html in render_all(title, url).items():
                tally.check(f"web {p}", f"{title} | {url}", html, baselines[p])
    _record(figures, "web app pages", tally)


def _record(figures: Figures, surface: str, tally: Tally) -> None:
    refused = f" ({tally.refused} refused as invalid)" if tally.refused else ""
    figures.record(f"XSS: {surface}, renders with a new element or script",
                   f"{len(tally.failures)}/{tally.renders}{refused}", "0", not tally.failures)
    assert tally.renders > 0
    assert not tally.failures, "\n".join(tally.failures[:20])

def test_the_detector_sees_an_unescaped_payload() -> None:
    """The comparison above can fail: raw payloads in a benign page are all caught."""
    base = shape(f"<p>{BENIGN}</p><a href=\"{BENIGN_URL}\">x</a>")
    for p in (p for p in PAYLOADS if p.startswith("<") and not p.startswith("<!--")):
        t = Tally()
        t.check("raw", p, f"<p>{p}</p><a href=\"{BENIGN_URL}\">x</a>", base)
        assert t.failures, p
    for u in URL_PAYLOADS[:6]:
        t = Tally()
        t.check("raw", u, f"<p>{BENIGN}</p><a href=\"{u}\">x</a>", base)
        assert t.failures, u
