"""Machine-readable copies of a notice: ACNS 2.0 XML and X-ARF v4 JSON, each checked
against its published schema before it may go out.

Abuse desks that process notices in bulk parse these instead of the prose, so a
document that does not validate is worse than none: the parser drops it, or reads the
wrong field. Both are built from the same context as the templates
(``notices.render.build_context``) with real serialisers, so hostile URLs are escaped by
construction.

* **X-ARF v4** (``xarf`` package, whose schemas are the spec's): one report per
  infringing URL, category ``copyright``, the type by what the URL is to the host
  (``XARF_TYPES``): a page linking to a video elsewhere is ``link_site``, a video host's
  own copy ``ugc_platform``, a file host's ``cyberlocker``, anything else the generic
  ``copyright``. ``match_details`` carries the fingerprint evidence (confidence,
  matched seconds, the catalogue reference); the schemas define it for
  ``ugc_platform`` and allow it as an extension elsewhere. Report ids are derived
  from the notice reference and the URL, so a resend is the same document.
* **ACNS 2.0 rev 1.2** (XSD in ``notices/schemas/acns/``): one ``Infringement`` per
  notice for one source, as the format wants: the server address the crawler saw
  (``Source/IP_Address`` is required), so the items are the notice's URLs served from
  the first known address. A notice none of whose URLs has a known address gets no
  ACNS document (the text and X-ARF still carry everything). ``Item/Hash`` is the hash
  of the media file when it was fetched whole, never the hash of an HTML page.

Called by ``notices.build``; attached (and the ACNS also inlined between the marker
lines AbuseIO looks for) by ``notices.mail``. ``check_acns``/``check_xarf`` return the
schema errors, empty when valid.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

ACNS_NS = "http://www.acns.net/ACNS"
ACNS_SCHEMA_VERSION = "1.2"
SCHEMAS = Path(__file__).parent / "schemas" / "acns"
# The marker lines AbuseIO's ACNS parsers look for in a mail body.
ACNS_START = "----Start ACNS XML"
ACNS_END = "----End ACNS XML"

# X-ARF v4 copyright types by host kind (Host.kind) for the host's own copy; a page that
# links to or embeds a video stored elsewhere is always ``link_site``.
XARF_TYPES = {"video_host": "ugc_platform", "ugc_platform": "ugc_platform", "streaming_host": "ugc_platform",
              "cyberlocker": "cyberlocker", "file_host": "cyberlocker",
              "link_site": "link_site", "torrent_site": "link_site"}
# The field each type requires to name the service.
_SERVICE_FIELD = {"ugc_platform": "platform_name", "cyberlocker": "hosting_service", "link_site": "site_name"}
# ``evidence_source`` values each type's schema allows (the generic type: any string).
_EVIDENCE_SOURCE = {"ugc_platform": "fingerprint_match", "cyberlocker": "automated_crawl",
                    "link_site": "automated_crawl", "copyright": "automated_crawl"}
# Fields we add to a type whose schema does not define them (the core allows them).
XARF_EXTENSIONS = frozenset({"match_details"})
_XARF_NAMESPACE = uuid.UUID("6f1e8a52-8f0c-4c1e-9a57-2d1f6b7c9e10")


def utc_z(value: datetime | str | None) -> str | None:
    """An ISO 8601 UTC time ending in ``Z`` (ACNS and X-ARF parsers both expect it)."""
    if value is None:
        return None
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1] if "@" in email else ""


def _items(ctx: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    return [(w, it) for w in ctx["works"] for it in w["items"]]


# --------------------------------------------------------------------------- ACNS


def _sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ACNS_NS}}}{tag}", attrs)
    if text is not None:
        el.text = str(text)
    return el


def _contact(parent: ET.Element, tag: str, entity: str, email: str, **optional: str | None) -> None:
    el = _sub(parent, tag)
    _sub(el, "Entity", entity)
    for key in ("Contact", "Address", "Phone"):
        if optional.get(key):
            _sub(el, key, optional[key])
    _sub(el, "Email", email)  # required by the schema; empty when the desk has no address


def _file_name(url: str) -> str:
    """The last path segment of the URL (what ACNS calls the file), else the URL's host."""
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1] or urlsplit(url).hostname or url


def acns_xml(ctx: Mapping[str, Any], *, service_provider_email: str | None,
             match_threshold: float) -> str | None:
    """ACNS 2.0 (rev 1.2) ``Infringement`` for the notice's first known source, or None
    when no URL of the notice has a known server address (``IP_Address`` is required).

    ``match_threshold`` is the fingerprint score (0..1) from which a match is confirmed,
    stated in the ``Detection`` block."""
    pairs = _items(ctx)
    first = next(((w, it) for w, it in pairs if it.get("source_ip")), None)
    if first is None:
        return None
    ip, port = first[1]["source_ip"], first[1]["source_port"]
    served = [(w, it) for w, it in pairs if it.get("source_ip") == ip and it.get("source_port") == port]
    ET.register_namespace("", ACNS_NS)
    # No ``schemaVersion``: the schema declares it namespace-qualified, which would need a
    # prefix on it while real-world notices (and parsers) use the default namespace.
    root = ET.Element(f"{{{ACNS_NS}}}Infringement")
    case = _sub(root, "Case")
    _sub(case, "ID", ctx["reference"])
    _sub(case, "Status", "Open")
    _sub(case, "Severity", "Normal")
    n = ctx["notifier"]
    _contact(root, "Complainant", n["legal_name"], n["email"], Contact=n["signature"] or n["legal_name"],
             Address=n["address"], Phone=n["phone"])
    _contact(root, "Service_Provider", ctx["host"]["name"], service_provider_email or "")
    src = _sub(root, "Source")
    _sub(src, "TimeStamp", utc_z(first[1]["found_at_iso"]) or utc_z(ctx["date_iso"]))
    _sub(src, "IP_Address", ip)
    if port is not None:
        _sub(src, "Port", port)
    _sub(src, "DNS_Name", urlsplit(first[1]["url"]).hostname or "")
    _sub(src, "Type", "HTTP")
    _sub(src, "SubType", "HTTP", BaseType="LINK" if first[1]["role"] == "linking" else "SERVER",
         Protocol="HTTP")
    _sub(src, "URL_Base", first[1]["url"])
    _sub(src, "Number_Files", len(served))
    content = _sub(root, "Content")
    for w, it in served:
        item = _sub(content, "Item")
        _sub(item, "TimeStamp", utc_z(it["found_at_iso"]) or utc_z(ctx["date_iso"]))
        _sub(item, "Title", w["title"])
        _sub(item, "FileName", _file_name(it["url"]))
        _sub(item, "URL", it["url"])
        _sub(item, "Type", "Movie")
        _sub(item, "ExplicitType", "Movie")
        if it.get("media_sha256"):
            _sub(item, "Hash", it["media_sha256"], Type="SHA256")
    if ctx.get("history"):
        hist = _sub(root, "History")
        for h in ctx["history"]:
            _sub(hist, "Notice", f"notice {h['id']}", ID=str(h["id"]), TimeStamp=utc_z(h["timestamp"]) or "")
    _sub(root, "Notes", f"Found by video fingerprint matching; {len(pairs)} URL(s) in notice "
                        f"{ctx['reference']}, {len(served)} served from {ip}.")
    _sub(root, "Type", "DMCA" if ctx["regime"] == "dmca" else "INFRINGEMENT")
    det = _sub(root, "Detection")
    asset = _sub(det, "Asset")
    works = {w["title_id"]: w for w, _ in served}
    _sub(asset, "OriginalAssetName", "; ".join(
        f"{w['title']} ({w['year']})" if w.get("year") else w["title"] for w in works.values()))
    _sub(asset, "OriginalAssetID", ",".join(str(t) for t in works), type="vigie-title-id")
    # Audio is not compared: not stated rather than stated false.
    _sub(det, "ContentMatched", Video="true", Fingerprint="true",
         Human="true" if all(it.get("reviewed") for _, it in served) else "false",
         MatchThreshold=str(round(match_threshold * 100)))
    _sub(det, "HashMatched", "true" if any(it.get("media_sha256") for _, it in served) else "false")
    _sub(det, "VerificationID", f"{ctx['reference']}/match " + ",".join(str(it["match_id"]) for _, it in served))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


@functools.lru_cache(maxsize=1)
def acns_schema() -> Any:
    """The ACNS 2.0 rev 1.2 schema, from the copy in ``notices/schemas/acns/`` (its W3C
    imports mapped to the local copies: no network)."""
    import xmlschema

    return xmlschema.XMLSchema10(
        str(SCHEMAS / "acns.xsd"),
        locations=[("http://www.w3.org/2005/05/xmlmime", str(SCHEMAS / "xmlmime.xsd")),
                   ("http://www.w3.org/2000/09/xmldsig#", str(SCHEMAS / "xmldsig.xsd"))])


def check_acns(document: str) -> list[str]:
    """The ACNS schema's complaints about ``document`` (empty when it is valid)."""
    try:
        return [f"{e.path}: {e.reason}" for e in acns_schema().iter_errors(document)]
    except Exception as exc:  # noqa: BLE001 - a document that does not even parse
        return [f"not XML: {exc}"]


# --------------------------------------------------------------------------- X-ARF


def xarf_type(host_kind: str | None, role: str) -> str:
    """The X-ARF copyright type of one URL: ``link_site`` for a page linking elsewhere,
    else by the host's kind (``copyright`` when the kind says nothing more)."""
    if role == "linking":
        return "link_site"
    return XARF_TYPES.get(str(host_kind or ""), "copyright")


def _reference_id(w: Mapping[str, Any], it: Mapping[str, Any]) -> str:
    ref = f" reference {it['reference_id']}" if it.get("reference_id") else ""
    return f"title {w['title_id']}{ref}, {it['ref_start_tc']}-{it['ref_end_tc']}"[:200]


def _match_details(w: Mapping[str, Any], it: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint evidence: score, seconds matched, the share of the work they are
    (when the reference's length is known) and which reference and stretch matched."""
    out: dict[str, Any] = {"match_confidence": min(max(float(it["score"]), 0.0), 1.0),
                           "match_duration": int(round(float(it["matched_s"])))}
    duration = it.get("reference_duration_s")
    if duration:
        out["match_percentage"] = round(min(100.0, 100.0 * float(it["matched_s"]) / float(duration)), 1)
    out["reference_id"] = _reference_id(w, it)
    return out


def xarf_report(ctx: Mapping[str, Any], w: Mapping[str, Any], it: Mapping[str, Any]) -> dict[str, Any]:
    """The X-ARF v4 report of one infringing URL, checked by the ``xarf`` library."""
    from xarf import create_report

    n = ctx["notifier"]
    domain = _domain_of(n["email"])
    sender = {"org": n["legal_name"][:200], "contact": n["email"], "domain": domain}
    reporter = {**sender, "org": str(w.get("rights_owner") or n["legal_name"])[:200]}
    rtype = xarf_type(ctx["host"].get("kind"), it["role"])
    year = f" ({w['year']})" if w.get("year") else ""
    fields: dict[str, Any] = {
        "infringing_url": it["url"],
        "work_title": str(w["title"])[:500],
        "rights_holder": reporter["org"],
        "work_category": "movie",
        "evidence_source": _EVIDENCE_SOURCE[rtype],
        "match_details": _match_details(w, it),
        "description": (f"{w['title']}{year}, rights owned by {reporter['org']}: video fingerprint match "
                        f"(score {it['score']}, {it['matched_s']} s, the copy's {it['cand_start_tc']}-"
                        f"{it['cand_end_tc']} is the work's {it['ref_start_tc']}-{it['ref_end_tc']}); "
                        f"notice {ctx['reference']}")[:1000],
        "tags": [f"notice:{ctx['reference'].lower()}", f"regime:{ctx['regime']}"],
    }
    port = it.get("source_port")
    if port:
        fields["source_port"] = port
    if rtype in _SERVICE_FIELD:
        fields[_SERVICE_FIELD[rtype]] = str(ctx["host"]["name"])[:200]
    if rtype == "link_site":
        fields["site_category"] = "streaming_links"
        fields["linked_content"] = [{"target_url": m, "link_type": "streaming_link"}
                                    for m in it.get("media_urls") or []][:50]
        if not fields["linked_content"]:
            del fields["linked_content"]
    elif rtype == "cyberlocker":
        info: dict[str, Any] = {"filename": _file_name(it["url"])[:500]}
        if it.get("media_sha256"):
            info["file_hash"] = f"sha256:{it['media_sha256']}"
        fields["file_info"] = info
    elif rtype == "ugc_platform":
        share = fields["match_details"].get("match_percentage")
        fields["infringement_type"] = "full_work" if share is not None and share >= 80 else "substantial_portion"
    elif rtype == "copyright" and w.get("offers"):
        fields["original_url"] = w["offers"][0]["url"]
    known = _xarf_fields(rtype)
    fields = {k: v for k, v in fields.items() if k in known or k in XARF_EXTENSIONS}
    source = it.get("source_ip") or urlsplit(it["url"]).hostname or it["url"]
    result = create_report(category="copyright", type=rtype, source_identifier=source,
                           reporter=reporter, sender=sender, **fields)
    if result.errors:
        from foundation.errors import NoticeInvalid

        raise NoticeInvalid(f"X-ARF report of {it['url'][:200]} is invalid: "
                            + "; ".join(f"{e.field}: {e.message}" for e in result.errors))
    # create_report draws a random id and stamps the creation time; the report is about
    # when we found the copy, and the same notice must give the same report.
    report = {"xarf_version": _spec_version(),
              "report_id": str(uuid.uuid5(_XARF_NAMESPACE, f"{ctx['reference']} {it['url']}")),
              "timestamp": utc_z(it["found_at_iso"]) or utc_z(ctx["date_iso"]),
              "reporter": reporter, "sender": sender, "source_identifier": source,
              "category": "copyright", "type": rtype, **fields}
    problems = check_xarf(report)
    if problems:
        from foundation.errors import NoticeInvalid

        raise NoticeInvalid(f"X-ARF report of {it['url'][:200]} is invalid: " + "; ".join(problems))
    return report


@functools.lru_cache(maxsize=None)
def _xarf_fields(rtype: str) -> frozenset[str]:
    """The fields the spec defines for a copyright type (its schema and the core's): a
    field one type defines and another does not is left out of the other's reports."""
    from importlib import resources

    root = resources.files("xarf") / "schemas"
    names: set[str] = set(json.loads((root / "xarf-core.json").read_text())["properties"])
    schema = json.loads((root / "types" / f"copyright-{rtype.replace('_', '-')}.json").read_text())
    for part in schema.get("allOf", []):
        names |= set(part.get("properties", {}))
    return frozenset(names)


def _spec_version() -> str:
    from xarf import SPEC_VERSION

    return str(SPEC_VERSION)


def xarf_reports(ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One X-ARF v4 ``copyright`` report per infringing URL (the format is per source)."""
    return [xarf_report(ctx, w, it) for w, it in _items(ctx)]


def xarf_json(ctx: Mapping[str, Any]) -> str:
    """The notice's X-ARF reports as a JSON array (how they are stored; each one is
    attached to the mail as a file of its own)."""
    return json.dumps(xarf_reports(ctx), ensure_ascii=False, indent=1)


def split_xarf(stored: str | None) -> list[dict[str, Any]]:
    """The reports of a stored ``Notice.xarf_json`` (one per attachment)."""
    if not stored:
        return []
    data = json.loads(stored)
    return data if isinstance(data, list) else [data]


def check_xarf(report: Mapping[str, Any] | str) -> list[str]:
    """Schema errors of one X-ARF v4 report (``xarf.parse``), and any field the schemas
    do not know beyond our declared extensions; empty when valid."""
    from xarf import parse

    result = parse(dict(report) if isinstance(report, Mapping) else report)
    out = [f"{e.field}: {e.message}" for e in result.errors]
    out += [f"{w.field}: {w.message}" for w in result.warnings if w.field not in XARF_EXTENSIONS]
    if result.report is None and not out:
        out.append("the xarf library could not read the report")
    return out


def machine_problems(acns: str | None, xarf: str | None) -> list[str]:
    """Everything wrong with a notice's stored machine-readable parts (checked again
    just before sending: a stored document may predate a template or schema change)."""
    out = [f"ACNS: {p}" for p in check_acns(acns)] if acns else []
    try:
        reports: Sequence[Any] = split_xarf(xarf)
    except ValueError as exc:
        return [*out, f"X-ARF: not JSON: {exc}"]
    for i, r in enumerate(reports, 1):
        out += [f"X-ARF report {i}: {p}" for p in check_xarf(r)]
    return out
