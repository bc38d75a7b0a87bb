"""A real RFC 3161 time-stamping authority on loopback for the evidence tests.

``openssl ts -reply`` (Debian's openssl) signs each request, behind a tiny threaded HTTP
server. The test CA and the TSA certificate (extendedKeyUsage critical timeStamping) are
made with openssl too. Tests skip with a reason where openssl is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPENSSL = shutil.which("openssl") or ("/usr/bin/openssl" if Path("/usr/bin/openssl").exists() else None)

_TSA_CONF = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass
class TSA:
    url: str
    chain: Path        # PEM: TSA certificate + CA (what [evidence] tsa_cert points to)
    dir: Path
    requests: list[bytes]
    fail: list[bool]   # set fail[0] = True to make it answer 500


def _run(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path, name: str = "Vigie Test TSA") -> None:
    """A CA and a TSA certificate signed by it, restricted to time stamping."""
    (d / "ext.cnf").write_text("[tsa_ext]\nextendedKeyUsage = critical,timeStamping\n"
                               "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Vigie Test CA", cwd=d)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name}", cwd=d)
    _run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "tsa.pem", "-days", "3650", "-extfile", "ext.cnf", "-extensions", "tsa_ext", cwd=d)
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(_TSA_CONF.format(dir=d))
    (d / "chain.pem").write_bytes((d / "tsa.pem").read_bytes() + (d / "ca.pem").read_bytes())


def start_tsa(d: Path) -> tuple[TSA, ThreadingHTTPServer]:
    make_pki(d)
    requests: list[bytes] = []
    fail = [False]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            requests.append(body)
            if fail[0]:
                self.send_response(500)
                self.end_headers()
                return
            with lock:  # openssl ts keeps its serial in a file
                out = subprocess.run([OPENSSL, "ts", "-reply", "-config", str(d / "tsa.cnf"),
                                      "-queryfile", "/dev/stdin", "-out", "/dev/stdout"],
                                     input=body, capture_output=True, timeout=30)
            self.send_response(200 if out.returncode == 0 else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(out.stdout)))
            self.end_headers()
            self.wfile.write(out.stdout)

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tsa = TSA(f"http://127.0.0.1:{server.server_address[1]}/tsa", d / "chain.pem", d, requests, fail)
    return tsa, server
