"""Trusted time: RFC 3161 time-stamp tokens over the daily manifests and case files.

A token from a time-stamping authority (TSA) binds the SHA-256 of a file to the
authority's clock, signed by its key: the file existed, byte for byte, at that time.
Requests and checks go through ``rfc3161-client`` (Trail of Bits, the client Sigstore
uses); the HTTP exchange is a plain POST (``application/timestamp-query``).

A token is checked when it is stored and again when it is exported or a case file is
verified: status granted, the message imprint equal to the file's hash, the signature
made by the configured TSA certificate (``[evidence] tsa_cert``: a PEM file holding the
TSA's certificate and its chain, up to the root that is trusted), that certificate
restricted to time stamping (critical extendedKeyUsage), and the nonce sent.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from foundation.errors import EvidenceError

# A TimeStampResp is a few kB; a larger answer is not one.
MAX_RESPONSE = 256 * 1024


@dataclass(frozen=True)
class Stamp:
    token: bytes = field(repr=False)  # the DER TimeStampResp, as received
    gen_time: datetime = field(default=datetime.min)  # the authority's time
    serial: int = 0


def load_chain(pem: bytes) -> list[Any]:
    """The certificates of a PEM file (TSA certificate and chain), EvidenceError if none."""
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise EvidenceError(f"the TSA certificate file holds no PEM certificate: {exc}") from None
    return certs


def read_chain(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read the TSA certificate {path}: {exc.strerror}") from None


def _verifier(chain_pem: bytes, nonce: int | None = None) -> Any:
    """A verifier trusting the chain's root (a self-signed certificate, else every
    certificate given), with the rest as intermediates, and pinned to the TSA certificate
    when the chain names exactly one certificate for time stamping."""
    from cryptography import x509
    from rfc3161_client import VerifierBuilder

    certs = load_chain(chain_pem)
    roots = [c for c in certs if c.issuer == c.subject]
    others = [c for c in certs if c.issuer != c.subject]
    builder = VerifierBuilder()
    for c in roots or certs:
        builder = builder.add_root_certificate(c)
    for c in others if roots else []:
        builder = builder.add_intermediate_certificate(c)
    tsa = []
    for c in certs:
        try:
            eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if x509.ExtendedKeyUsageOID.TIME_STAMPING in eku:
            tsa.append(c)
    if len(tsa) == 1:
        builder = builder.tsa_certificate(tsa[0])
    if nonce is not None:
        builder = builder.nonce(nonce)
    return builder.build()


def verify_token(token: bytes, data: bytes, chain_pem: bytes, *, nonce: int | None = None) -> Stamp:
    """Check ``token`` over ``data`` against the chain; the stamp, EvidenceError saying why not."""
    from rfc3161_client import VerificationError, decode_timestamp_response

    try:
        resp = decode_timestamp_response(token)
    except Exception as exc:  # noqa: BLE001 - the Rust parser raises its own kinds: all mean "not a token"
        raise EvidenceError(f"not a time-stamp token: {str(exc)[:200]}") from None
    try:
        _verifier(chain_pem, nonce).verify_message(resp, data)
    except (VerificationError, ValueError) as exc:
        raise EvidenceError(f"time-stamp token does not verify: {exc}") from None
    info = resp.tst_info
    return Stamp(token=token, gen_time=info.gen_time, serial=int(info.serial_number))


def request_stamp(data: bytes, tsa_url: str, chain_pem: bytes, *, timeout: float) -> Stamp:
    """Ask the TSA at ``tsa_url`` for a token over SHA-256(``data``); checked before it is
    returned (EvidenceError when the authority refuses, is unreachable, or its token
    does not verify)."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    req = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
           .cert_request(cert_request=True).nonce(nonce=True).build())
    http = urllib.request.Request(tsa_url, data=req.as_bytes(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query",
                                           "Accept": "application/timestamp-reply"})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as resp:  # noqa: S310 - configured URL
            token = resp.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        raise EvidenceError(f"time-stamping authority {tsa_url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EvidenceError(f"time-stamping authority {tsa_url} unreachable: "
                            f"{getattr(exc, 'reason', exc)}") from None
    if len(token) > MAX_RESPONSE:
        raise EvidenceError(f"time-stamping authority {tsa_url} sent over {MAX_RESPONSE} bytes")
    return verify_token(token, data, chain_pem, nonce=req.nonce)
