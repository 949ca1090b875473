"""A throwaway OpenLDAP directory for tests: slapd.conf, an mdb database loaded with slapadd and
a test CA's certificate in a temp directory, loopback ports for ldap:// and ldaps://; started
once per session from Debian's binaries and stopped at the end. Missing binaries fail the run:
scripts/install-test-deps installs them."""

from __future__ import annotations

import base64
import datetime
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson")

SUFFIX = "dc=ourcorp,dc=example"
PEOPLE_BASE = f"ou=people,{SUFFIX}"
ROLES_BASE = f"ou=roles,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root secret"
SERVICE_DN = f"cn=mailward,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "s3rvice pässword"
SIZE_LIMIT = 500  # the server's limit on one plain search; paged searches may go beyond it
TLS_NAME = "localhost"  # the only name in the server certificate (not 127.0.0.1)

FIRST_NAMES = (
    "Jane", "John", "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry",
    "Irene", "Jack", "Karen", "Liam", "Maria", "Noah", "Olivia", "Peter", "Quinn", "Rachel",
    "Samuel", "Tina", "Umar", "Vera", "Walter", "Xenia", "Yusuf", "Zara", "Anna", "Brian",
    "Chloe", "Daniel", "Elena", "Felix", "Gina", "Hugo", "Isla", "Jonas", "Kira", "Leo",
)
LAST_NAMES = (
    "Smith", "Johnson", "Brown", "Taylor", "Anderson", "Thomas", "Jackson", "White", "Harris",
    "Martin", "Thompson", "Garcia", "Martinez", "Robinson", "Clark", "Lewis", "Walker", "Hall",
    "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
    "Campbell", "Mitchell",
)
GENERATED_PEOPLE = len(FIRST_NAMES) * len(LAST_NAMES)  # 1,200


@dataclass(frozen=True)
class Person:
    """One inetOrgPerson of the test directory, as an import should see it."""

    cn: str
    display_name: str | None
    mail: tuple[str, ...]


# UTF-8 names that must come through intact; José's displayName is his cn (one identity)
ACCENTED = (
    Person("Zoë Müller", None, ("zoe.mueller@ourcorp.example",)),
    Person("José Núñez", "José Núñez", ("jose.nunez@ourcorp.example",)),
    Person("François Lefèvre", None, ("francois.lefevre@ourcorp.example",)),
)
ROLES = ("IT Support", "Help Desk", "System Administrator")


def people() -> list[Person]:
    """The 1,200 generated people (every third with a displayName, every tenth with a second
    address) and the accented ones."""
    out: list[Person] = []
    for index, (last, first) in enumerate(
        (last, first) for last in LAST_NAMES for first in FIRST_NAMES
    ):
        local = f"{first}.{last}".lower()
        mail: tuple[str, ...] = (f"{local}@ourcorp.example",)
        if index % 10 == 0:
            mail += (f"{first[0]}{last}@ourcorp.example".lower(),)
        display = f"{last}, {first}" if index % 3 == 0 else None
        out.append(Person(f"{first} {last}", display, mail))
    return [*out, *ACCENTED]


@dataclass(frozen=True)
class SlapdServer:
    """A running throwaway slapd: ``url`` (plain, StartTLS-capable) and ``ldaps_url`` (implicit
    TLS, certificate for ``localhost`` only, issued by the CA in ``ca_file``)."""

    port: int
    tls_port: int
    ca_file: Path
    root: Path

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{TLS_NAME}:{self.tls_port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ldif_value(attribute: str, value: str) -> str:
    """``attr: value``, base64 (``attr:: ...``) when the value is not plain ASCII (RFC 2849)."""
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{attribute}: {value}"
    return f"{attribute}:: {base64.b64encode(value.encode()).decode()}"


def _ldif() -> str:
    def entry(dn: str, *lines: str) -> str:
        return "\n".join((_ldif_value("dn", dn), *lines)) + "\n"

    entries = [
        entry(SUFFIX, "objectClass: dcObject", "objectClass: organization", "dc: ourcorp",
              "o: Our Corp"),
        entry(PEOPLE_BASE, "objectClass: organizationalUnit", "ou: people"),
        entry(ROLES_BASE, "objectClass: organizationalUnit", "ou: roles"),
        entry(f"ou=services,{SUFFIX}", "objectClass: organizationalUnit", "ou: services"),
        entry(SERVICE_DN, "objectClass: applicationProcess", "objectClass: simpleSecurityObject",
              "cn: mailward", _ldif_value("userPassword", SERVICE_PASSWORD)),
    ]
    for person in people():
        uid = person.mail[0].partition("@")[0]
        lines = ["objectClass: inetOrgPerson", _ldif_value("cn", person.cn),
                 _ldif_value("sn", person.cn.rpartition(" ")[2]), f"uid: {uid}"]
        if person.display_name:
            lines.append(_ldif_value("displayName", person.display_name))
        lines += [f"mail: {address}" for address in person.mail]
        entries.append(entry(f"uid={uid},{PEOPLE_BASE}", *lines))
    for role in ROLES:
        entries.append(entry(f"cn={role},{ROLES_BASE}", "objectClass: organizationalRole",
                             f"cn: {role}"))
    return "\n".join(entries)


def _slapd_conf(root: Path) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
    return f"""{includes}
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath {MODULE_DIR}
moduleload back_mdb
# a plain search stops at {SIZE_LIMIT} entries; a paged one may return every entry (like
# Active Directory's MaxPageSize): without prtotal the hard limit would cap paging too
sizelimit size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.prtotal=unlimited
TLSCACertificateFile {root}/ca.pem
TLSCertificateFile {root}/server.pem
TLSCertificateKeyFile {root}/server.key

database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw "{ROOT_PASSWORD}"
directory {root}/db
maxsize 67108864
# passwords: only to bind with
access to attrs=userPassword
    by anonymous auth
    by * none
# the people: only the import's service account reads them
access to dn.subtree="{PEOPLE_BASE}"
    by dn.exact="{SERVICE_DN}" read
    by * none
# the rest (roles, the organisation): anyone, anonymous binds too
access to *
    by * read
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_certificates(root: Path) -> None:
    """A test CA (ca.pem) and the server's certificate for ``localhost`` (server.pem/.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("mailward test CA"))
        .issuer_name(_name("mailward test CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(TLS_NAME)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (root / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"slapd exited ({process.returncode}) at start:\n{_log_tail(log)}",
                        pytrace=False)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"slapd did not listen on port {port} within 15 s:\n{_log_tail(log)}",
                pytrace=False)


@pytest.fixture(scope="session")
def slapd_server() -> Iterator[SlapdServer]:
    needed = [SLAPD, SLAPADD, MODULE_DIR / "back_mdb.so",
              *(SCHEMA_DIR / f"{name}.schema" for name in SCHEMAS)]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        pytest.fail(
            f"OpenLDAP server not found ({', '.join(missing)}): run scripts/install-test-deps "
            "(it installs the Debian package slapd)",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="mailward-slapd-"))
    (root / "db").mkdir()
    _write_certificates(root)
    conf, data, log = root / "slapd.conf", root / "data.ldif", root / "slapd.log"
    conf.write_text(_slapd_conf(root))
    data.write_text(_ldif(), encoding="utf-8")
    loaded = subprocess.run([str(SLAPADD), "-q", "-f", str(conf), "-l", str(data)],
                            capture_output=True, text=True, check=False)
    if loaded.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"slapadd failed ({loaded.returncode}):\n{loaded.stderr}", pytrace=False)
    server = SlapdServer(port=_free_port(), tls_port=_free_port(), ca_file=root / "ca.pem",
                         root=root)
    listen = f"ldap://127.0.0.1:{server.port}/ ldaps://127.0.0.1:{server.tls_port}/"
    with log.open("wb") as log_file:
        process = subprocess.Popen([str(SLAPD), "-f", str(conf), "-h", listen, "-d", "0"],
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    try:
        _wait_for_port(process, server.port, log)
        _wait_for_port(process, server.tls_port, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
