"""The legitimate offer, in public: "where to watch <title> legally" pages.

The producer wants viewers to learn that its films are its own and where to watch them.
``vigie serve`` publishes, without login, an index of the titles and a page per title
(the rights holders' names and logos, a poster frame cut from our own reference, the
legitimate offers open today, per territory, with their provider and kind); ``vigie report --public DIR`` writes the
same pages as static HTML. When ``[web].public_base_url`` is set, ``title_url`` gives
the address notices link to beside the offers.

Only published titles have a public page (``Title.published``, from ``publish_from`` on,
in the configured time zone): an unreleased film watched for leaks is absent from the
index and the static export, and its page and poster answer 404. Staff publish with
``vigie catalog publish`` or the titles admin page.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Offer, OfferKind, RightsHolder, Title
from db.rights import WORLDWIDE, current_offers, offers_in
from foundation.config import Config
from foundation.errors import ReportError
from foundation.timeutil import local_today
from reports.daily import safe_url
from reports.thumbs import title_poster

KIND_LABELS = {
    OfferKind.VOD_RENTAL: "rent on demand",
    OfferKind.VOD_PURCHASE: "buy to own",
    OfferKind.SVOD: "subscription streaming",
    OfferKind.CINEMA: "in cinemas",
    OfferKind.OTHER: "other",
}


def title_url(config: Config, title_id: int) -> str | None:
    """The public page of a title, for notices; None when no public base URL is set."""
    base = (config.web.get("public_base_url") or "").rstrip("/")
    return f"{base}/public/titles/{title_id}" if base else None


def brand(config: Config) -> dict[str, str]:
    name = config.notifier.get("legal_name") or "the rights holder"
    return {"producer": name, "brand": config.web.get("brand") or name}


def list_titles(session: Session) -> list[Title]:
    """Every title, published or not (the admin pages, the staff API)."""
    return list(session.scalars(select(Title).options(selectinload(Title.offers), selectinload(Title.rights))
                                .order_by(Title.title, Title.id)))


def is_public(title: Title, today: date) -> bool:
    """Published, and its publication date (if any) has come."""
    return bool(title.published) and (title.publish_from is None or title.publish_from <= today)


def list_public_titles(session: Session, config: Config) -> list[Title]:
    """The titles with a public page today (local date of the configured time zone)."""
    today = local_today(config)
    return [t for t in list_titles(session) if is_public(t, today)]


def _offer_view(o: Offer) -> dict[str, Any]:
    return {"provider": o.provider or "", "kind": KIND_LABELS.get(o.kind, o.kind.value),
            "territory": o.territory, "url": safe_url(o.url),
            "until": o.valid_until.isoformat() if o.valid_until else None}


def offers_view(title: Title, day: date) -> list[dict[str, Any]]:
    """The title's offers open on ``day`` (today in the configured time zone, as on the
    title's own page), wherever they are."""
    return [_offer_view(o) for o in offers_in(title.offers, None, day) if safe_url(o.url)]


def territories_view(title: Title, day: date) -> list[dict[str, Any]]:
    """The offers open on ``day``, per territory ("worldwide" first)."""
    out = []
    for field, offers in current_offers(title, day).items():
        rows = [_offer_view(o) for o in offers if safe_url(o.url)]
        if rows:
            out.append({"territory": "worldwide" if field == WORLDWIDE else field.replace(",", ", "),
                        "offers": rows})
    return out


def holders_view(title: Title, logo_url: Any) -> list[dict[str, Any]]:
    """The title's rights holders (once each), with the address of their logo if any."""
    seen: dict[int, RightsHolder] = {}
    for r in title.rights:
        seen.setdefault(r.holder_id, r.holder)
    return [{"name": h.legal_name, "logo_url": logo_url(h) if h.logo else None} for h in seen.values()]


def title_context(session: Session, config: Config, title: Title, day: date | None = None,
                  logo_url: Any = None) -> dict[str, Any]:
    poster = title_poster(session, title)
    day = day or local_today(config)
    return {"title": title, "offers": offers_view(title, day), "territories": territories_view(title, day),
            "holders": holders_view(title, logo_url or (lambda h: f"/public/holders/{h.id}/logo")),
            "today": day.isoformat(), "has_poster": poster is not None, "poster": poster, **brand(config)}


def export_static(session: Session, config: Config, out_dir: str | Path) -> list[Path]:
    """Write ``index.html``, ``title-<id>.html`` and ``poster-<id>.jpg`` to ``out_dir``."""
    from webapp.web import template_env

    env: Environment = template_env()
    out = Path(out_dir)
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        titles = list_public_titles(session, config)
        links = {t.id: f"title-{t.id}.html" for t in titles}
        today = local_today(config)
        index = env.get_template("public_index.html").render(
            titles=[(t, links[t.id], len(offers_view(t, today))) for t in titles], index_url="index.html",
            static=True, **brand(config))
        css = out / "app.css"
        css.write_bytes((Path(__file__).parent / "static" / "app.css").read_bytes())
        written.append(css)
        (out / "index.html").write_text(index, encoding="utf-8")
        written.append(out / "index.html")
        logos: dict[int, str] = {}

        def logo_file(h: RightsHolder) -> str:
            if h.id not in logos:
                name = f"logo-{h.id}.{'png' if h.logo_type == 'image/png' else 'jpg'}"
                (out / name).write_bytes(h.logo or b"")
                written.append(out / name)
                logos[h.id] = name
            return logos[h.id]

        for t in titles:
            ctx = title_context(session, config, t, logo_url=logo_file)
            poster_url = None
            if ctx["poster"] is not None:
                poster_path = out / f"poster-{t.id}.jpg"
                poster_path.write_bytes(ctx["poster"].jpeg)
                written.append(poster_path)
                poster_url = poster_path.name
            page = env.get_template("public_title.html").render(
                poster_url=poster_url, index_url="index.html", static=True, **ctx)
            (out / links[t.id]).write_text(page, encoding="utf-8")
            written.append(out / links[t.id])
    except OSError as exc:
        raise ReportError(f"cannot write the public pages to {out}: {exc.strerror or exc}") from None
    return written

