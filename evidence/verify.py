"""Checking a case file alone: has anything in it changed since it was made?

``verify_case`` needs nothing but the zip (and, better, the TSA certificate the reader
trusts: ``--tsa-cert``; otherwise the chain the file carries, whose subject and
fingerprint are shown so they can be compared with the authority's published ones):

- every file listed in ``manifest.json`` is there with the same SHA-256, and nothing
  unlisted was added;
- ``manifest.json.tsr`` is a valid token over ``manifest.json`` (so the list of hashes
  itself was not rewritten);
- every item's bytes (a file, or its byte range of ``warc/case.warc.gz``) have the
  SHA-256 it was captured with, and that hash is in the daily manifest it cites;
- every daily manifest's token verifies over the daily manifest.

Each problem names the file (or item) concerned.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.timestamp import load_chain, verify_token
from foundation.errors import EvidenceError

# Files of a case file that manifest.json cannot list (itself and its token).
UNLISTED = ("manifest.json", "manifest.json.tsr")


@dataclass
class CaseCheck:
    files: int = 0
    items: int = 0
    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tsa: str | None = None          # who signed: subject and SHA-256 fingerprint

    @property
    def ok(self) -> bool:
        return not self.problems


def _describe_chain(pem: bytes) -> str:
    from cryptography.hazmat.primitives import hashes

    certs = load_chain(pem)
    return "; ".join(f"{c.subject.rfc4514_string()} (SHA-256 {c.fingerprint(hashes.SHA256()).hex()})"
                     for c in certs)


def verify_case(path: str | Path, tsa_cert: bytes | None = None) -> CaseCheck:
    """Every check of the module docstring; problems listed, never raised (EvidenceError
    only for a file that is not a case file at all)."""
    out = CaseCheck()
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise EvidenceError(f"{path}: not a readable zip file: {exc}") from None
    with zf:
        names = set(zf.namelist())
        try:
            manifest_bytes = zf.read("manifest.json")
            manifest: dict[str, Any] = json.loads(manifest_bytes)
        except (KeyError, ValueError) as exc:
            raise EvidenceError(f"{path}: no readable manifest.json: {exc}") from None
        chain = tsa_cert
        if chain is None and manifest.get("tsa_chain") in names:
            chain = zf.read(manifest["tsa_chain"])
            out.notes.append("tokens checked against the chain inside the case file: compare its "
                             "fingerprint with the authority's")
        if chain:
            try:
                out.tsa = _describe_chain(chain)
            except EvidenceError as exc:
                out.problems.append(f"TSA certificate: {exc}")
                chain = None

        contents: dict[str, bytes] = {}
        listed = {f["path"]: f for f in manifest.get("files", [])}
        for name, f in sorted(listed.items()):
            if name not in names:
                out.problems.append(f"{name}: missing from the case file")
                continue
            data = zf.read(name)
            contents[name] = data
            out.files += 1
            if hashlib.sha256(data).hexdigest() != f.get("sha256"):
                out.problems.append(f"{name}: altered (its SHA-256 is not the one in manifest.json)")
        for name in sorted(names - set(listed) - set(UNLISTED)):
            if not name.endswith("/"):
                out.problems.append(f"{name}: not listed in manifest.json (added later)")

        if "manifest.json.tsr" in names:
            _check_token(out, "manifest.json", zf.read("manifest.json.tsr"), manifest_bytes, chain)
        else:
            out.notes.append("manifest.json has no time-stamp token")

        daily = {d["id"]: d for d in manifest.get("daily_manifests", [])}
        daily_hashes: dict[int, set[tuple[int, str]]] = {}
        for mid, d in daily.items():
            data = contents.get(d["file"])
            if data is None:
                continue  # already reported as missing or not listed
            if hashlib.sha256(data).hexdigest() != d.get("sha256"):
                out.problems.append(f"{d['file']}: not the daily manifest its token covers")
            try:
                body = json.loads(data)
                daily_hashes[mid] = {(int(i["id"]), i["sha256"]) for i in body.get("items", [])}
            except (ValueError, KeyError, TypeError):
                out.problems.append(f"{d['file']}: not a readable daily manifest")
            if d.get("token"):
                token = contents.get(d["token"])
                if token is not None:
                    _check_token(out, d["file"], token, data, chain)
            else:
                out.notes.append(f"{d['file']}: no time-stamp token")

        for item in manifest.get("items", []):
            _check_item(out, item, contents, daily_hashes)
    return out


def _check_token(out: CaseCheck, what: str, token: bytes, data: bytes, chain: bytes | None) -> None:
    if chain is None:
        out.problems.append(f"{what}: its time-stamp token cannot be checked (no TSA certificate)")
        return
    try:
        verify_token(token, data, chain)
        out.tokens += 1
    except EvidenceError as exc:
        out.problems.append(f"{what}: time-stamp token check failed: {exc}")


def _check_item(out: CaseCheck, item: dict[str, Any], contents: dict[str, bytes],
                daily: dict[int, set[tuple[int, str]]]) -> None:
    out.items += 1
    name = item.get("file")
    data = contents.get(name or "")
    if data is None:
        return  # the file's own problem is already listed
    if item.get("offset") is not None:
        data = data[int(item["offset"]):int(item["offset"]) + int(item.get("length") or 0)]
    label = f"item {item.get('id')} ({item.get('kind')}, {name})"
    if hashlib.sha256(data).hexdigest() != item.get("sha256"):
        out.problems.append(f"{label}: altered (not the bytes captured)")
    mid = item.get("daily_manifest")
    if mid is None:
        out.notes.append(f"{label}: in no timestamped manifest yet")
    elif mid in daily and (int(item["id"]), item.get("sha256")) not in daily[mid]:
        out.problems.append(f"{label}: its SHA-256 is not the one in its daily manifest")
