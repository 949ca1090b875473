"""Configuration: one TOML file, every key typed and documented; unknown keys are errors.

Each section is a dataclass; each field's ``doc`` metadata is its documentation (printed by
``mailward config``). Defaults work with no file at all.
"""

from __future__ import annotations

import dataclasses
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and key."""


def doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class SiteConfig:
    authserv_id: str = doc(
        "authserv-id written in Authentication-Results (RFC 8601); empty = this host's name", ""
    )
    domains: list[str] = doc(
        "the site's own mail domains; empty = this host's name and localhost", factory=list
    )


@dataclass(frozen=True)
class DnsConfig:
    zone_file: str = doc(
        "YAML zone data (RFC 7208 test-suite format) answering every query instead of real DNS",
        "",
    )
    nameservers: list[str] = doc("nameserver IPs; empty = the system's resolv.conf", factory=list)
    timeout: float = doc("seconds one DNS query may take before it is a temperror", 5.0)
    cache_size: int = doc("answers kept in the DNS cache", 100_000)
    negative_ttl: float = doc("longest time an NXDOMAIN/NODATA answer is cached (s)", 300.0)


@dataclass(frozen=True)
class ChecksConfig:
    enabled: list[str] = doc(
        "checks to run, by name",
        factory=lambda: ["spf", "dkim", "arc", "dmarc", "envelope", "identity", "content"],
    )
    budget: float = doc("seconds all checks of one message may take together", 20.0)


@dataclass(frozen=True)
class SpfConfig:
    lookup_limit: int = doc("DNS-querying terms per SPF evaluation (RFC 7208 4.6.4)", 10)
    void_lookup_limit: int = doc("lookups returning nothing before permerror (RFC 7208)", 2)
    helo_check: bool = doc("also evaluate the HELO identity when MAIL FROM is not empty", True)


@dataclass(frozen=True)
class DkimConfig:
    min_rsa_bits: int = doc("RSA keys shorter than this never pass (RFC 8301: 1024)", 1024)
    max_signatures: int = doc("signatures verified per message; more are reported, not checked", 8)
    require_from_signed: bool = doc("a signature whose h= lacks From does not pass", True)


@dataclass(frozen=True)
class DmarcConfig:
    tree_walk_max_labels: int = doc("labels kept when starting the RFC 9989 DNS tree walk", 8)


@dataclass(frozen=True)
class ArcConfig:
    trusted_sealers: list[str] = doc(
        "ARC sealer domains whose chain may override a DMARC failure (mailing lists, forwarders)",
        factory=list,
    )


@dataclass(frozen=True)
class IdentityConfig:
    protected_names: list[str] = doc(
        "people and roles users trust; a display name imitating one is a finding when the mail "
        "is from outside the site or not authenticated as the site",
        factory=list,
    )
    partner_domains: list[str] = doc(
        "outside domains users trust (suppliers, bank): lookalikes of them are findings",
        factory=list,
    )
    protected_file: str = doc(
        "CSV file with more protected identities: a header row with a name column and, "
        "optionally, an email column (addresses that person really uses)",
        "",
    )
    first_contact_hours: float = doc(
        "a sender writing as a protected identity is a first contact unless the site's users "
        "have written to the address, or mail from it was delivered at least this many hours "
        "earlier (so one campaign's first messages do not vouch for its later ones)",
        72.0,
    )
    reload_interval: float = doc(
        "seconds between looks at protected_file and the directory import: a running hub "
        "loads them again when they change (a broken file keeps the identities in use)",
        30.0,
    )

    def __post_init__(self) -> None:
        if self.reload_interval <= 0:
            raise ConfigError(
                f"identity.reload_interval: must be positive, got {self.reload_interval}"
            )
        if self.first_contact_hours < 0:
            raise ConfigError(
                f"identity.first_contact_hours: must not be negative, got "
                f"{self.first_contact_hours}"
            )


@dataclass(frozen=True)
class DirectoryConfig:
    url: str = doc(
        "LDAP server protected identities are imported from (ldap://host or ldaps://host:636); "
        "empty = no directory",
        "",
    )
    bind_dn: str = doc("DN to bind as; empty = anonymous bind", "")
    password_file: str = doc(
        "file holding the bind password (first line); the password is never logged", ""
    )
    starttls: bool = doc("upgrade an ldap:// connection with StartTLS before binding", False)
    ca_file: str = doc("CA certificates trusted for ldaps:// and StartTLS; empty = system", "")
    base: str = doc("search base DN, e.g. ou=people,dc=ourcorp,dc=example", "")
    filter: str = doc(
        "LDAP filter selecting the protected people and roles",
        "(|(objectClass=person)(objectClass=organizationalRole))",
    )
    name_attributes: list[str] = doc(
        "attributes holding a protected name; every value of each is protected",
        factory=lambda: ["displayName", "cn"],
    )
    mail_attributes: list[str] = doc(
        "attributes holding the addresses that person really uses",
        factory=lambda: ["mail"],
    )
    refresh: float = doc(
        "seconds between imports by the running hub (the last good import is kept when the "
        "directory cannot be reached)",
        3600.0,
    )
    timeout: float = doc("seconds one connection or search may take", 10.0)


@dataclass(frozen=True)
class ContentConfig:
    languages: list[str] = doc(
        "phrase rule sets to apply (en, de, fr, es)", factory=lambda: ["en", "de", "fr", "es"]
    )
    scan_limit: int = doc("characters of decoded text scanned per message", 50_000)


@dataclass(frozen=True)
class VerdictConfig:
    tag: float = doc("score from which the message is tagged", 4.0)
    quarantine: float = doc("score from which the message is quarantined", 10.0)
    reject: float = doc("score from which the message is rejected", 15.0)
    forced: dict[str, str] = doc(
        "symbol -> disposition that finding forces whatever the score (like rspamd's "
        "force_actions); merged over the defaults; \"score\" removes a default",
        factory=lambda: {
            "DMARC_FAIL_REJECT": "reject",
            "DMARC_FAIL_QUARANTINE": "quarantine",
            "DMARC_TEMPERROR": "tempfail",
            # our own domains used from outside without proof (issue: never accept forged
            # "internal" mail); a site may soften these to "quarantine" or "tag"
            "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED": "reject",
            "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED": "reject",
        },
    )


@dataclass(frozen=True)
class BannerConfig:
    enabled: bool = doc(
        "mark tagged messages: a warning banner at the top of the text, a subject prefix and "
        "an X-Mailward-Warning header",
        True,
    )
    subject_prefix: str = doc(
        "put once before the Subject of a tagged message; empty = subject unchanged",
        "[Suspicious]",
    )
    report_address: str = doc(
        "address users forward suspicious mail to, named in the banner; empty = not shown", ""
    )
    report_url: str = doc(
        "http(s) page where users report suspicious mail, linked from the banner; empty = not "
        "shown",
        "",
    )
    standing_rule: str = doc(
        "the site's standing rule, shown in every banner (the default is translated to the "
        "banner language; a site's own text is shown as written); empty = not shown",
        "Our administrators will never ask you for your password or ask you to set it to a "
        "given value.",
    )
    language: str = doc(
        "language of the banner texts: en, de, fr, es, or one the site's template_dir provides",
        "en",
    )
    template_dir: str = doc(
        "directory with the site's own banner texts (<language>/banner.txt, banner.html, "
        "reasons.toml), each file found there replacing the built-in one; empty = built-in",
        "",
    )
    wrap_dkim_signed: bool = doc(
        "wrap a DKIM-signed message (banner first, the original attached unchanged) instead of "
        "editing it, so that its signature still verifies downstream",
        False,
    )

    def __post_init__(self) -> None:
        import re

        if not re.fullmatch(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?", self.language):
            raise ConfigError(f"banner.language: {self.language!r} is not a language code")
        if self.report_url and not re.fullmatch(r"https?://[^\s<>\"']+", self.report_url):
            raise ConfigError(f"banner.report_url: {self.report_url!r} is not an http(s) URL")
        if self.report_address and not re.fullmatch(r"[^\s<>@\"]+@[^\s<>@\"]+",
                                                    self.report_address):
            raise ConfigError(
                f"banner.report_address: {self.report_address!r} is not an email address"
            )
        for key in ("subject_prefix", "standing_rule"):
            if any(ord(c) < 32 or ord(c) == 127 for c in getattr(self, key)):
                raise ConfigError(f"banner.{key}: control characters are not allowed")


@dataclass(frozen=True)
class ServerConfig:
    data_dir: str = doc("directory for the store, the spool, TLS keys and local Maildirs", "./var")
    workers: int = doc(
        "processes receiving mail on the shared listening sockets; 0 = one per CPU core", 0
    )


@dataclass(frozen=True)
class SmtpConfig:
    inbound_listen: str = doc("host:port of the inbound (MX) listener", "127.0.0.1:2525")
    submission_listen: str = doc(
        "host:port of the submission listener (STARTTLS)", "127.0.0.1:2587"
    )
    submission_tls_listen: str = doc(
        "host:port of the submission listener with implicit TLS (RFC 8314)", "127.0.0.1:2465"
    )
    hostname: str = doc("our name in the banner and in Received; empty = this host's name", "")
    tls_cert: str = doc("PEM certificate chain; empty = self-signed, made on first start", "")
    tls_key: str = doc("PEM private key for tls_cert", "")
    max_message_size: int = doc("largest message accepted, bytes (SIZE)", 25 * 1024 * 1024)
    max_recipients: int = doc("recipients per message", 100)
    max_header_fields: int = doc("header fields per message before 552", 1000)
    command_timeout: float = doc("seconds of client silence before the connection is closed", 300.0)
    data_timeout: float = doc(
        "seconds a client may take to send one message, from the 354 to the final dot, "
        "however steadily it sends, before 421",
        1800.0,
    )
    max_connections: int = doc("simultaneous connections per listener", 500)
    max_connections_per_ip: int = doc("simultaneous connections from one client IP", 20)
    verdict_timeout: float = doc("seconds the checks may take at end of DATA before 451", 30.0)
    shutdown_grace: float = doc("seconds sessions may go on after SIGTERM before 421", 10.0)


@dataclass(frozen=True)
class SubmissionConfig:
    shared_addresses: dict[str, list[str]] = doc(
        "role address -> users who may send as it, e.g. {\"it-support@ourcorp.example\" = "
        "[\"alice\", \"bob\"]}",
        factory=dict,
    )
    max_auth_failures: int = doc(
        "failed logins per IP or account within auth_window (all workers of one hub together)", 5)
    auth_window: float = doc("seconds over which failed logins are counted", 600.0)


@dataclass(frozen=True)
class DeliveryConfig:
    downstream: str = doc(
        "relay accepted inbound mail to smtp://host:port; empty = Maildir under data_dir", ""
    )
    retry_base: float = doc("first retry delay in seconds; doubles per attempt", 60.0)
    retry_max: float = doc("longest delay between two attempts, seconds", 3600.0)
    max_age: float = doc("seconds a message may stay queued before it fails", 5 * 86400.0)
    concurrency: int = doc("messages delivered at the same time", 20)
    mx_port: int = doc("TCP port for delivery to other sites' MX hosts (25; test labs only)", 25)
    https_port: int = doc("TCP port for MTA-STS policy fetches (443; test labs only)", 443)
    tls_ca_file: str = doc(
        "CA bundle for verifying MX certificates under MTA-STS; empty = the system's", ""
    )


KEEP_RAW_CHOICES = ("none", "quarantine", "quarantine-and-reported")


@dataclass(frozen=True)
class StoreConfig:
    url: str = doc(
        "SQLAlchemy database URL of the central store (e.g. postgresql+psycopg://mailward@db/"
        "mailward); empty = SQLite file mailward.db under the data directory (./var)",
        "",
    )
    retention_days: int = doc(
        "days log rows (transactions, findings, deliveries, events, ...) are kept before purge",
        90,
    )
    keep_raw: str = doc(
        "which raw messages the store keeps: none, quarantine, or quarantine-and-reported "
        "(quarantined messages and those users report)",
        "quarantine-and-reported",
    )

    def __post_init__(self) -> None:
        if self.keep_raw not in KEEP_RAW_CHOICES:
            raise ConfigError(
                f"store.keep_raw: {self.keep_raw!r} is not one of " + ", ".join(KEEP_RAW_CHOICES)
            )
        if self.retention_days < 1:
            raise ConfigError(
                f"store.retention_days: must be at least 1, got {self.retention_days}"
            )


@dataclass(frozen=True)
class TraceConfig:
    trusted_relays: list[str] = doc(
        "hosts besides this hub whose Received headers `mailward trace` believes (the site's "
        "other MX hosts, relays in front of or behind the hub): IP addresses, CIDR networks "
        "(10.0.0.0/8), host names, or .domain for every name under it",
        factory=list,
    )

    def __post_init__(self) -> None:
        import ipaddress
        import re

        name = re.compile(r"^(?:\*?\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")
        for entry in self.trusted_relays:
            text = entry.strip()
            if "/" in text or ":" in text or text.replace(".", "").isdigit():
                try:
                    ipaddress.ip_network(text, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"trace.trusted_relays: {entry!r} is not an IP address or network"
                    ) from None
            elif not name.match(text):
                raise ConfigError(f"trace.trusted_relays: {entry!r} is not a host name")


@dataclass(frozen=True)
class AlertsConfig:
    to: list[str] = doc(
        "administrator addresses that get a short mail for each compromise alert; empty = "
        "alerts are only recorded in the store (and the event log)",
        factory=list,
    )
    rate_factor: float = doc(
        "an account sending more than this many times its normal hourly rate (learnt from "
        "the central log's last week at start, then as it sends) within an hour is an alert",
        10.0,
    )
    rate_min_per_hour: int = doc(
        "messages per hour an account may always send, whatever its normal rate (so new and "
        "quiet accounts do not alert on their first few messages); more is an alert",
        60,
    )
    external_recipients_per_hour: int = doc(
        "distinct recipients outside the site one account may send to within an hour; more "
        "is an alert",
        100,
    )
    binding_refusals_per_hour: int = doc(
        "submissions of one account refused within an hour because it does not own the "
        "sender address (MAIL FROM or From) that make an alert",
        3,
    )
    login_ips_per_hour: int = doc(
        "distinct client IPs one account may log in from within an hour; more is an alert", 5
    )
    failed_logins_before_success: int = doc(
        "failed logins to one account within an hour (without a success between them) that "
        "make the next successful login an alert",
        10,
    )

    def __post_init__(self) -> None:
        import re

        for address in self.to:
            if not re.fullmatch(r"[^\s<>@\"]+@[^\s<>@\"]+", address):
                raise ConfigError(f"alerts.to: {address!r} is not an email address")
        if self.rate_factor <= 1.0:
            raise ConfigError(f"alerts.rate_factor: must be above 1, got {self.rate_factor}")
        for key in (
            "rate_min_per_hour",
            "external_recipients_per_hour",
            "binding_refusals_per_hour",
            "login_ips_per_hour",
            "failed_logins_before_success",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"alerts.{key}: must be at least 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class EventsConfig:
    jsonl_path: str = doc(
        "write every event (connection, auth, transaction, delivery, bounce, alert) as one "
        "JSON line to this file (reopened on SIGHUP and when rotated away); \"-\" = standard "
        "output; empty = off",
        "",
    )
    syslog: str = doc(
        "also send every event to syslog (RFC 5424): udp://host:port or unix:///dev/log; "
        "empty = off",
        "",
    )
    syslog_facility: str = doc(
        "syslog facility of the events: mail, daemon, user, local0 ... local7, ...", "mail"
    )

    def __post_init__(self) -> None:
        import re

        if self.syslog and not re.fullmatch(
            r"udp://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}|unix://(/\S+)", self.syslog
        ):
            raise ConfigError(
                f"events.syslog: {self.syslog!r} is not udp://host:port or unix:///path"
            )
        facilities = (
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", *(f"local{i}" for i in range(8)),
        )
        if self.syslog_facility not in facilities:
            raise ConfigError(
                f"events.syslog_facility: {self.syslog_facility!r} is not one of "
                + ", ".join(facilities)
            )


@dataclass(frozen=True)
class WebConfig:
    listen: str = doc(
        "host:port of the web port: Prometheus metrics at /metrics (the console will live "
        "here too); empty = off",
        "127.0.0.1:8025",
    )

    def __post_init__(self) -> None:
        import re

        if self.listen and not re.fullmatch(
            r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]*):\d{1,5}", self.listen
        ):
            raise ConfigError(f"web.listen: {self.listen!r} is not host:port")


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    spf: SpfConfig = field(default_factory=SpfConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    dmarc: DmarcConfig = field(default_factory=DmarcConfig)
    arc: ArcConfig = field(default_factory=ArcConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    banner: BannerConfig = field(default_factory=BannerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def authserv_id(self) -> str:
        return self.site.authserv_id or self.hostname

    @property
    def local_domains(self) -> frozenset[str]:
        """The domains the hub accepts mail for: site.domains, or (like Postfix's
        mydestination default) this host's name and localhost when none are configured."""
        domains = self.site.domains or [self.hostname, "localhost"]
        return frozenset(d.lower().rstrip(".") for d in domains)

    @property
    def hostname(self) -> str:
        return self.smtp.hostname or socket.getfqdn() or "localhost"


def _check_type(where: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(f"{where}[{i}]", item, v) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _check_type(f"{where}.{k}", item, v) for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported union type")
    raise ConfigError(f"{where}: unsupported type {hint!r}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown configuration key {where}{key}")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key}: expected a [{key}] table")
            kwargs[key] = _build(hint, value, f"{where}{key}.")
        else:
            kwargs[key] = _check_type(f"{where}{key}", hint, value)
    return cls(**kwargs)


def from_dict(values: dict[str, Any], source: str = "configuration") -> Config:
    try:
        config: Config = _build(Config, values, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    _validate(config, source)
    return _merge_forced(config)


def _merge_forced(config: Config) -> Config:
    """A site's [verdict.forced] changes the default table instead of replacing it."""
    merged = {**VerdictConfig().forced, **config.verdict.forced}
    merged = {k: v for k, v in merged.items() if v != "score"}
    return dataclasses.replace(
        config, verdict=dataclasses.replace(config.verdict, forced=merged)
    )


def _validate(config: Config, source: str) -> None:
    allowed = {"accept", "tag", "quarantine", "reject", "tempfail", "score"}
    for symbol, disposition in config.verdict.forced.items():
        if disposition not in allowed:
            raise ConfigError(
                f"{source}: verdict.forced.{symbol}: {disposition!r} is not one of "
                + ", ".join(sorted(allowed))
            )
    v = config.verdict
    if not v.tag <= v.quarantine <= v.reject:
        raise ConfigError(f"{source}: verdict thresholds must satisfy tag <= quarantine <= reject")


def load(path: str | Path | None) -> Config:
    """Read the TOML file at ``path``; None gives the embedded defaults."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}") from None
    try:
        values = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(values, str(path))


def documented_keys() -> list[tuple[str, str, Any]]:
    """Every configuration key as (dotted name, doc, default), for docs and `mailward config`."""
    out: list[tuple[str, str, Any]] = []
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        hint = hints[section.name]
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            out.append((section.name, "symbol -> score overrides for findings", {}))
            continue
        instance = hint()
        for f in dataclasses.fields(hint):
            out.append((f"{section.name}.{f.name}", f.metadata["doc"], getattr(instance, f.name)))
    return out
