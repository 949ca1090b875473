"""Outbound delivery honours MTA-STS (RFC 8461): enforce means a matching MX and a valid cert."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.hubproc import HubProcess, free_port, stop_controller

PASSWORD = "correct horse battery"
POLICIES = {
    "mta-sts.remote.test": "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 86400\n",
    "mta-sts.strict.test": "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\n"
                           "max_age: 86400\n",
    "mta-sts.badcert.test": "version: STSv1\nmode: enforce\nmx: mx.badcert.test\n"
                            "max_age: 86400\n",
}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaves = {}
    for host in ("mx.remote.test", "mta-sts"):
        names = [host] if host != "mta-sts" else list(POLICIES)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName(n) for n in names]
                    + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = directory / f"{host}.crt", directory / f"{host}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        leaves[host] = (cert_path, key_path)
    return ca_path, leaves


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        body = POLICIES.get(host, "").encode()
        if self.path != "/.well-known/mta-sts.txt" or not body:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Remote:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bool]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append((envelope.rcpt_tos, session.ssl is not None))
        return "250 OK"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Remote]]:
    work = tmp_path_factory.mktemp("sts")
    ca, leaves = make_pki(work)
    mx_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mx_tls.load_cert_chain(*leaves["mx.remote.test"])
    remote = Remote()
    mx_port, https_port = free_port(), free_port()
    controller = Controller(remote, hostname="127.0.0.1", port=mx_port, tls_context=mx_tls)
    controller.start()
    web_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    web_tls.load_cert_chain(*leaves["mta-sts"])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", https_port), PolicyHandler)
    httpd.socket = web_tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    zones: dict[str, object] = {}
    for domain in ("remote.test", "strict.test", "badcert.test"):
        zones[domain] = [{"MX": [10, f"mx.{domain}"]}]
        zones[f"mx.{domain}"] = [{"A": "127.0.0.1"}]
        zones[f"_mta-sts.{domain}"] = [{"TXT": "v=STSv1; id=20261127"}]
        zones[f"mta-sts.{domain}"] = [{"A": "127.0.0.1"}]
    zones["plain.test"] = [{"MX": [10, "mx.plain.test"]}]  # no policy: opportunistic TLS
    zones["mx.plain.test"] = [{"A": "127.0.0.1"}]
    hub = HubProcess(work, zones, extra_config=(
        f'[delivery]\nmx_port = {mx_port}\nhttps_port = {https_port}\ntls_ca_file = "{ca}"\n'
        "retry_base = 600.0\n"
    ))
    hub.add_user("alice", "alice@ourcorp.example", PASSWORD)
    hub.start()
    yield hub, remote
    hub.stop()
    stop_controller(controller)
    httpd.shutdown()
    httpd.server_close()


def send(hub: HubProcess, rcpt: str) -> None:
    hub.submit("alice", PASSWORD, "alice@ourcorp.example", [rcpt],
               f"From: alice@ourcorp.example\r\nTo: {rcpt}\r\nSubject: sts\r\n\r\nhello\r\n")


def test_enforced_policy_with_matching_mx_and_valid_cert_delivers_over_tls(world) -> None:  # type: ignore[no-untyped-def]
    hub, remote = world
    send(hub, "bob@remote.test")
    deadline = time.monotonic() + 20
    while not any("bob@remote.test" in r for r, _ in remote.received):
        assert time.monotonic() < deadline, hub.log()
        time.sleep(0.1)
    assert all(tls for r, tls in remote.received if "bob@remote.test" in r)


def test_policy_violations_are_deferred_not_sent(world) -> None:  # type: ignore[no-untyped-def]
    hub, remote = world
    send(hub, "carol@strict.test")  # MX not named by the policy
    send(hub, "dave@badcert.test")  # the MX certificate is not valid for mx.badcert.test
    send(hub, "erin@plain.test")  # no policy: delivered (opportunistic STARTTLS)
    deadline = time.monotonic() + 20
    while not any("erin@plain.test" in r for r, _ in remote.received):
        assert time.monotonic() < deadline, hub.log()
        time.sleep(0.1)
    time.sleep(1.0)
    delivered = {a for r, _ in remote.received for a in r}
    assert "carol@strict.test" not in delivered and "dave@badcert.test" not in delivered
    log = hub.log()
    assert "to=<carol@strict.test> status=deferred" in log
    assert "matches its MTA-STS policy" in log
    assert "to=<dave@badcert.test> status=deferred" in log
