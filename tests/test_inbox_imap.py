"""``vigie inbox fetch`` against a real IMAP server: Debian's Dovecot, started by the test
on a free loopback port with its own configuration in a temporary directory (a
passwd-file user, plaintext login allowed on loopback only, maildir storage), as the
PostgreSQL and SMTP tests start theirs. Skipped, saying why, where Dovecot is absent
(``apt-get install dovecot-imapd``).

Mail is put in the mailbox with IMAP APPEND, as a mail server would deliver it. The
fetch must store every mail once, leave them unseen on the server, start after the last
UID it stored, fetch only the header of a mail over ``max_bytes``, and refuse a wrong
password or a login in clear with a one-line error. A second Dovecot requires TLS with a
certificate of a test CA: IMAPS and STARTTLS work with ``[inbox] ca_file``, and the
certificate is refused without it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import InboxMessage, Notice, NoticeStatus, ReplyKind
from foundation.errors import InboxError
from inbox.sources import fetch_imap
from tests import inbox_mail as mk
from tests.test_inbox import NOW, config, replies, sent_world
from tests.test_notices_support import free_port, smtp, web  # noqa: F401
from vigie.cli import cli

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
USER, PASSWORD = "vigie", "imap test password"

CONF = """\
base_dir = {d}/run
state_dir = {d}/state
instance_name = vigie-test-{port}
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{d}/home/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
"""


def _ids() -> dict[str, Any]:
    """Who Dovecot's processes and mail run as: ourselves, or as root its own system users
    (Dovecot refuses to run its login process as root or to store mail as uid 0)."""
    if os.getuid() != 0:
        me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        return {"internal_user": me, "internal_group": group, "login_user": me,
                "uid": os.getuid(), "gid": os.getgid()}
    try:
        dovecot, dovenull = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
    except KeyError:
        pytest.skip("running as root and Dovecot's system users (dovecot, dovenull) are missing")
    return {"internal_user": "dovecot", "internal_group": grp.getgrgid(dovecot.pw_gid).gr_name,
            "login_user": dovenull.pw_name, "uid": dovecot.pw_uid, "gid": dovecot.pw_gid}


PLAIN = """ssl = no
# Loopback only, in a test: a real deployment uses TLS ([inbox] tls = true).
disable_plaintext_auth = no"""


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1 (cert, key, CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key: object, issuer: str, signer: object, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[attr-defined]
             .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                             x509.DNSName("localhost")]), critical=False)
        else:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
        return b.sign(signer, hashes.SHA256())  # type: ignore[arg-type]

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("Vigie test CA", ca_key, "Vigie test CA", ca_key, True)
    leaf = cert("127.0.0.1", key, "Vigie test CA", ca_key, False)
    paths = d / "cert.pem", d / "key.pem", d / "ca.pem"
    paths[0].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


@contextmanager
def dovecot(tls: bool = False) -> Iterator[dict[str, Any]]:
    if DOVECOT is None:
        pytest.skip("Dovecot is not installed (Debian: apt-get install dovecot-imapd)")
    ids = _ids()
    # Not under pytest's tmp_path: its parents are private to us, and Dovecot's auth and
    # login processes (other users when we are root) must reach the passwd file and sockets.
    d = Path(tempfile.mkdtemp(prefix="vigie-dovecot-"))
    for sub in ("run", "state", "home"):
        (d / sub).mkdir()
    os.chmod(d, 0o755)
    if os.getuid() == 0:
        os.chown(d / "home", ids["uid"], ids["gid"])
    (d / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port, imaps_port = free_port(), (free_port() if tls else 0)
    ssl_conf, ca = PLAIN, None
    if tls:
        cert, key, ca = _tls_files(d)
        # TLS required before any login: STARTTLS on the IMAP port, or IMAPS.
        ssl_conf = f"ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\ndisable_plaintext_auth = yes"
    conf = d / "dovecot.conf"
    conf.write_text(CONF.format(d=d, port=port, imaps_port=imaps_port, ssl=ssl_conf, **ids))
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (d / "dovecot.log").read_text() if (d / "dovecot.log").exists() else ""
                out = proc.stdout.read().decode(errors="replace") if proc.stdout and proc.poll() is not None else ""
                pytest.fail(f"Dovecot did not start: {out[-1000:]} {log[-1000:]}")
            time.sleep(0.1)
        yield {"host": "127.0.0.1", "port": port, "imaps_port": imaps_port, "dir": d, "ca": ca}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def imap_server() -> Iterator[dict[str, Any]]:
    with dovecot() as server:
        yield server


def deliver(server: dict[str, Any], *mails: bytes) -> None:
    import imapclient

    with imapclient.IMAPClient(server["host"], port=server["port"], ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        for raw in mails:
            c.append("INBOX", raw)


def unseen(server: dict[str, Any]) -> int:
    import imapclient

    with imapclient.IMAPClient(server["host"], port=server["port"], ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        return len(c.search(["UNSEEN"]))


def imap_config(smtp_port: int, server: dict[str, Any], **kw: Any) -> Any:
    return config(smtp_port, host=server["host"], port=server["port"], tls=False, allow_plaintext=True,
                  user=USER, password=PASSWORD, timeout=10, **kw)


def test_fetch_from_a_real_imap_server(Session, db_url, imap_server, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = imap_config(port, imap_server)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    first = ("ack_en", "dsn", "counter_dmca", "huge", "no_reference", "malformed")
    deliver(imap_server, *(mails[k] for k in first))

    out = fetch_imap(Session, cfg, now=NOW)
    assert out.seen == len(first) and len(out.result.stored) == len(first), out.result.errors
    assert not out.result.errors
    with Session() as s:
        rows = list(s.scalars(select(InboxMessage).order_by(InboxMessage.imap_uid)))
        assert [m.imap_uid for m in rows] == list(range(1, len(first) + 1))
        kinds = [m.kind for m in rows]
        assert kinds[:3] == [ReplyKind.ACK, ReplyKind.BOUNCE, ReplyKind.COUNTER_NOTICE]
        big = rows[3]
        assert big.truncated and big.size > 400_000 and len(big.raw) < 5_000 and big.notice_id == w["usvid"]["id"]
        # Stored as fetched: the bytes Dovecot holds (it may add nothing but keeps CRLF).
        assert rows[0].raw.replace(b"\r\n", b"\n") == mails["ack_en"].replace(b"\r\n", b"\n")
        assert s.get(Notice, w["tube"]["id"]).status is NoticeStatus.FAILED
    assert unseen(imap_server) == len(first)    # read with BODY.PEEK: nothing marked seen

    again = fetch_imap(Session, cfg, now=NOW)
    assert again.seen == 0 and again.result.stored == []
    deliver(imap_server, mails["removed_en"], mails["ack_en"])   # one new, one copy of a stored mail
    third = fetch_imap(Session, cfg, now=NOW)
    assert third.seen == 2 and len(third.result.stored) == 1 and third.result.duplicates == 1
    assert fetch_imap(Session, cfg, now=NOW).seen == 0           # the copy moved the high-water mark

    # The CLI, from a config file.
    conf = tmp_path / "vigie.toml"
    conf.write_text(f'[inbox]\nhost = "127.0.0.1"\nport = {imap_server["port"]}\ntls = false\n'
                    f'allow_plaintext = true\nuser = "{USER}"\npassword = "{PASSWORD}"\n')
    deliver(imap_server, mk.reply(frm="abuse@tube.example", subject=f"Re: {w['tube']['ref']}",
                                  body="Les contenus ont été supprimés."))
    r = CliRunner().invoke(cli, ["--db", db_url, "--config", str(conf), "inbox", "fetch"])
    assert r.exit_code == 0, r.output
    assert "1 mail(s) read, 1 stored (removed 1)" in r.output


def test_imap_refusals_are_one_line_errors(Session, imap_server, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    bad = imap_config(port, imap_server)
    bad.inbox["password"] = "wrong"
    with pytest.raises(InboxError, match="login refused"):
        fetch_imap(Session, bad, now=NOW)
    clear = imap_config(port, imap_server)
    clear.inbox["allow_plaintext"] = False
    with pytest.raises(InboxError, match="offers no TLS"):
        fetch_imap(Session, clear, now=NOW)
    missing = imap_config(port, imap_server, folder="Nowhere")
    with pytest.raises(InboxError, match="Nowhere"):
        fetch_imap(Session, missing, now=NOW)
    closed = imap_config(port, imap_server)
    closed.inbox["port"] = free_port()
    with pytest.raises(InboxError, match="cannot connect"):
        fetch_imap(Session, closed, now=NOW)


def test_fetch_over_tls_imaps_and_starttls(Session, smtp, web) -> None:  # type: ignore[no-untyped-def]
    """The default: TLS. Dovecot with a certificate of a test CA, TLS required before login;
    IMAPS and STARTTLS both verify the certificate against ``[inbox] ca_file``, and the
    system's CAs (which never signed it) are refused."""
    rec, port = smtp
    pages, base = web
    with dovecot(tls=True) as server:
        cfg = config(port, host=server["host"], port=server["imaps_port"], tls=True, ca_file=str(server["ca"]),
                     user=USER, password=PASSWORD, timeout=10)
        w = sent_world(Session, cfg, base)
        import imapclient

        ctx = __import__("ssl").create_default_context(cafile=str(server["ca"]))
        with imapclient.IMAPClient(server["host"], port=server["imaps_port"], ssl=True, ssl_context=ctx) as c:
            c.login(USER, PASSWORD)
            c.append("INBOX", replies(w)["ack_en"])
        out = fetch_imap(Session, cfg, now=NOW)
        assert len(out.result.stored) == 1 and not out.result.errors
        starttls = config(port, host=server["host"], port=server["port"], tls=False, ca_file=str(server["ca"]),
                          user=USER, password=PASSWORD, timeout=10)
        with imapclient.IMAPClient(server["host"], port=server["imaps_port"], ssl=True, ssl_context=ctx) as c:
            c.login(USER, PASSWORD)
            c.append("INBOX", replies(w)["removed_en"])
        assert len(fetch_imap(Session, starttls, now=NOW).result.stored) == 1
        untrusted = config(port, host=server["host"], port=server["imaps_port"], tls=True,
                           user=USER, password=PASSWORD, timeout=10)
        with pytest.raises(InboxError, match="cannot connect|CERTIFICATE_VERIFY_FAILED|certificate"):
            fetch_imap(Session, untrusted, now=NOW)
