"""Machine-readable copies of a notice: ACNS 2.0 XML and X-ARF v4 JSON.

Abuse desks that process notices in bulk parse these instead of the prose. Both are
built from the same context as the templates (``notices.render.build_context``) with
real serialisers (ElementTree, json), so hostile URLs are escaped by construction.
Called by ``notices.build``; attached to the mail by ``notices.mail``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

ACNS_NS = "http://www.acns.net/ACNS"

# X-ARF v4 copyright report types by host kind (Host.kind); link sites are the default.
XARF_TYPES = {"video_host": "ugc_platform", "ugc_platform": "ugc_platform",
              "cyberlocker": "cyberlocker", "file_host": "cyberlocker", "link_site": "link_site"}


def _sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ACNS_NS}}}{tag}", attrs)
    if text is not None:
        el.text = str(text)
    return el


def acns_xml(ctx: Mapping[str, Any], *, service_provider_email: str | None) -> str:
    """ACNS 2.0 ``Infringement``: Case, Complainant, Service_Provider, Source, Content."""
    ET.register_namespace("", ACNS_NS)
    root = ET.Element(f"{{{ACNS_NS}}}Infringement")
    case = _sub(root, "Case")
    _sub(case, "ID", ctx["reference"])
    _sub(case, "Status", "Open")
    _sub(case, "Severity", "Normal")
    n = ctx["notifier"]
    comp = _sub(root, "Complainant")
    _sub(comp, "Entity", n["legal_name"])
    _sub(comp, "Contact", n["signature"] or n["legal_name"])
    _sub(comp, "Address", n["address"])
    _sub(comp, "Phone", n["phone"])
    _sub(comp, "Email", n["email"])
    sp = _sub(root, "Service_Provider")
    _sub(sp, "Entity", ctx["host"]["name"])
    if service_provider_email:
        _sub(sp, "Email", service_provider_email)
    items = [it for w in ctx["works"] for it in w["items"]]
    src = _sub(root, "Source")
    _sub(src, "TimeStamp", items[0]["found_at_iso"] if items else ctx["date_iso"])
    _sub(src, "Type", "HTTP")
    if items:
        _sub(src, "URL_Base", items[0]["url"])
    content = _sub(root, "Content")
    for w in ctx["works"]:
        for it in w["items"]:
            item = _sub(content, "Item")
            _sub(item, "TimeStamp", it["found_at_iso"])
            _sub(item, "Title", w["title"])
            _sub(item, "URL", it["url"])
            if it["evidence_sha256"]:
                _sub(item, "Hash", it["evidence_sha256"], Type="SHA256")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def xarf_reports(ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One X-ARF v4 ``Copyright`` report per infringing URL (the format is per source)."""
    n = ctx["notifier"]
    domain = n["email"].rsplit("@", 1)[-1] if "@" in n["email"] else ""
    rtype = XARF_TYPES.get(str(ctx["host"].get("kind") or ""), "link_site")
    out = []
    for w in ctx["works"]:
        for it in w["items"]:
            out.append({
                "Version": "4",
                "ReporterInfo": {
                    "ReporterOrg": n["legal_name"],
                    "ReporterOrgDomain": domain,
                    "ReporterOrgEmail": n["email"],
                    "ReporterContactEmail": n["email"],
                    "ReporterContactName": n["signature"] or n["legal_name"],
                    "ReporterContactPhone": n["phone"],
                },
                "Disclosure": True,
                "Report": {
                    "ReportClass": "Copyright",
                    "ReportType": rtype,
                    "Date": it["found_at_iso"],
                    "Source": it["url"],
                    "SourceType": "Uri",
                    "Title": w["title"],
                    "Hash": {"SHA256": it["evidence_sha256"]},
                    "Reference": ctx["reference"],
                    "LegalRegime": ctx["regime"],
                },
            })
    return out


def xarf_json(ctx: Mapping[str, Any]) -> str:
    return json.dumps(xarf_reports(ctx), ensure_ascii=False, indent=1)
