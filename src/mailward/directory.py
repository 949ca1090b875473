"""Import of the protected identities (people and roles) from the site's LDAP directory."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError, LDAPStartTLSError

from mailward import protected
from mailward.config import Config, DirectoryConfig
from mailward.lookalike import ProtectedName

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # entries per page of the search (RFC 2696 paged results)
DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}
# result codes of an LDAP search (RFC 4511)
SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_OBJECT = 0, 4, 32


class DirectoryError(Exception):
    """The import cannot be done; a one-line message for an administrator (never the
    password)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the directory is: ``directory.url`` taken apart."""

    scheme: str  # ldap or ldaps
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class CheckedTls(ldap3.Tls):
    """ldap3's TLS, with the handshake left to Python's ssl module and its context: the
    certificate must chain to a trusted CA and name the host (ldap3's own host check calls
    ssl.match_hostname, deprecated, and gone from Python 3.12). Keeps the TLS error, if any,
    for the message (ldap3 wraps it in its own)."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context = context
        self.host = host
        self.failure: OSError | None = None

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        try:
            connection.socket = self.context.wrap_socket(
                connection.socket, server_hostname=self.host, do_handshake_on_connect=True
            )
        except OSError as exc:  # ssl.SSLError, certificate errors and timeouts are OSErrors
            self.failure = exc
            raise


def endpoint(config: DirectoryConfig) -> Endpoint:
    """``directory.url`` checked: ldap:// or ldaps://, a host, an optional port, no path."""
    url = config.url.strip()
    if not url:
        raise DirectoryError("directory.url is empty: no directory to import from")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise DirectoryError(f"directory.url: {url!r} has an invalid port") from None
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise DirectoryError(
            f"directory.url: {url!r} is not ldap://host[:port] or ldaps://host[:port]"
        )
    return Endpoint(scheme, parts.hostname, port)


def read_password(config: DirectoryConfig) -> str | None:
    """The bind password (first line of ``directory.password_file``); None for an anonymous
    bind."""
    if not config.bind_dn:
        return None
    if not config.password_file:
        raise DirectoryError(
            f"directory.bind_dn is {config.bind_dn!r} but directory.password_file is empty"
        )
    try:
        text = Path(config.password_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(
            f"directory.password_file: cannot read {config.password_file}: "
            f"{exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise DirectoryError(
            f"directory.password_file: {config.password_file} is not UTF-8 text"
        ) from None
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise DirectoryError(
            f"directory.password_file: the first line of {config.password_file} is empty"
        )
    return password


def tls_context(config: DirectoryConfig) -> ssl.SSLContext:
    """Certificates verified against ``directory.ca_file`` (or the system's CAs), host name
    checked."""
    try:
        return ssl.create_default_context(cafile=config.ca_file or None)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DirectoryError(
            f"directory.ca_file: cannot read {config.ca_file}: {reason}"
        ) from None


def fetch_identities(config: DirectoryConfig) -> list[ProtectedName]:
    """Every protected identity in the directory: each value of each name attribute of each
    entry ``directory.filter`` selects under ``directory.base``, with the entry's addresses
    (mail attributes, lower-cased); duplicates removed. Blocking."""
    where = endpoint(config)
    if not config.base.strip():
        raise DirectoryError("directory.base is empty: give the DN to search under")
    if not config.name_attributes:
        raise DirectoryError("directory.name_attributes is empty: nothing would be imported")
    password = read_password(config)
    tls = None
    if where.scheme == "ldaps" or config.starttls:
        tls = CheckedTls(tls_context(config), where.host)
    elif password is not None and not _loopback(where.host):
        log.warning("the bind password for %s goes to %s unencrypted: use ldaps:// or "
                    "directory.starttls", _who(config), where)
    server = ldap3.Server(
        where.host, port=where.port, use_ssl=where.scheme == "ldaps", tls=tls,
        get_info=ldap3.NONE, connect_timeout=config.timeout,
    )
    connection = ldap3.Connection(
        server, user=config.bind_dn or None, password=password, read_only=True,
        auto_referrals=False,
        # whole seconds: ldap3 packs the receive timeout into SO_RCVTIMEO as an integer
        receive_timeout=max(1, math.ceil(config.timeout)),
    )
    try:
        _open(connection, config, where, tls)
        _bind(connection, config, where)
        entries = _search(connection, config, where)
    finally:
        with contextlib.suppress(LDAPException, OSError):
            connection.unbind()
        if connection.socket is not None:  # ldap3 leaves it open when connect() fails
            connection.socket.close()
    identities = _identities(entries, config)
    if not identities:
        raise DirectoryError(
            f"no entry under {config.base} matching {config.filter} has a name "
            f"({', '.join(config.name_attributes)}) that {_who(config)} may read on {where}: "
            "nothing imported"
        )
    return identities


def sync(config: Config) -> int:
    """Import the directory's identities now into the file `protected.load` reads; returns
    how many. On failure nothing is written: the last good import stays."""
    identities = fetch_identities(config.directory)
    path = protected.directory_cache(config)
    try:
        return protected.write_csv(path, identities)
    except OSError as exc:
        raise DirectoryError(f"cannot write {path}: {exc.strerror or exc}") from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _who(config: DirectoryConfig) -> str:
    return config.bind_dn or "an anonymous bind"


def _reason(exc: LDAPException) -> str:
    """The cause in an ldap3 exception, without ldap3's prefixes ("socket connection error
    while opening: [Errno 111] Connection refused" -> "Connection refused")."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    history = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(history, list) and history:  # every address of the host failed
        text = str(history[-1][0])
    text = re.sub(r"^(?:[^:]*(?:error|failed)[^:]*: ?)+", "", text)
    return re.sub(r"^\[Errno -?\d+\] ", "", text).strip() or type(exc).__name__


def _open(
    connection: ldap3.Connection, config: DirectoryConfig, where: Endpoint,
    tls: CheckedTls | None,
) -> None:
    try:
        connection.open(read_server_info=False)
        if config.starttls and where.scheme == "ldap":
            connection.start_tls(read_server_info=False)
    except LDAPException as exc:
        if tls is not None and tls.failure is not None:
            failure = tls.failure
            reason = getattr(failure, "verify_message", None) or re.sub(
                r"^\[SSL: \w+\] | \(_ssl\.c:\d+\)$", "", str(failure))
            raise DirectoryError(f"TLS with the directory at {where} failed: {reason}") from None
        if isinstance(exc, LDAPStartTLSError):
            raise DirectoryError(
                f"the directory at {where} refused StartTLS: {_reason(exc)}"
            ) from None
        raise DirectoryError(
            f"cannot connect to the directory at {where}: {_reason(exc)}"
        ) from None


def _bind(connection: ldap3.Connection, config: DirectoryConfig, where: Endpoint) -> None:
    try:
        bound = connection.bind(read_server_info=False)
    except LDAPException as exc:
        raise DirectoryError(
            f"bind as {_who(config)} to the directory at {where} failed: {_reason(exc)}"
        ) from None
    if not bound:
        result = connection.result or {}
        refusal = result.get("description") or "refused"
        if result.get("message"):
            refusal += f" ({result['message']})"
        hint = " (check directory.bind_dn and the password file)" if config.bind_dn else ""
        raise DirectoryError(
            f"the directory at {where} refused the bind as {_who(config)}: {refusal}{hint}"
        )


def _search(
    connection: ldap3.Connection, config: DirectoryConfig, where: Endpoint
) -> list[dict[str, Any]]:
    """Every entry the search returns, page by page (so a server size limit below the
    number of entries does not cut the import short)."""
    try:
        response = connection.extend.standard.paged_search(
            config.base, config.filter, ldap3.SUBTREE,
            attributes=[*config.name_attributes, *config.mail_attributes],
            paged_size=PAGE_SIZE, generator=False,
        )
    except LDAPInvalidFilterError:
        raise DirectoryError(
            f"directory.filter: {config.filter!r} is not a valid LDAP filter"
        ) from None
    except LDAPException as exc:
        raise DirectoryError(
            f"search of the directory at {where} failed: {_reason(exc)}"
        ) from None
    entries = [item for item in response or [] if item.get("type") == "searchResEntry"]
    result = connection.result or {}
    code = result.get("result", SUCCESS)
    if code == NO_SUCH_OBJECT:
        raise DirectoryError(
            f"directory.base: no entry {config.base} on the directory at {where} "
            f"(or {_who(config)} may not see it)"
        )
    if code == SIZE_LIMIT_EXCEEDED:
        raise DirectoryError(
            f"the directory at {where} stopped the search after {len(entries)} entries "
            f"(its size limit for {_who(config)}): nothing imported"
        )
    if code != SUCCESS:
        detail = f" ({result['message']})" if result.get("message") else ""
        raise DirectoryError(
            f"search under {config.base} on the directory at {where} failed: "
            f"{result.get('description') or code}{detail}"
        )
    return entries


def _values(entry: dict[str, Any], attributes: list[str]) -> list[str]:
    """The values of ``attributes`` in one entry, as text (also from attribute options such
    as cn;lang-fr)."""
    wanted = {name.lower() for name in attributes}
    out = []
    for name, values in (entry.get("raw_attributes") or {}).items():
        if name.split(";", 1)[0].lower() not in wanted:
            continue
        for value in values:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if text.strip():
                out.append(text.strip())
    return out


def _identities(
    entries: list[dict[str, Any]], config: DirectoryConfig
) -> list[ProtectedName]:
    found: dict[ProtectedName, None] = {}
    for entry in entries:
        addresses = frozenset(a.lower() for a in _values(entry, config.mail_attributes))
        for name in _values(entry, config.name_attributes):
            found.setdefault(ProtectedName(name, addresses))
    return list(found)
