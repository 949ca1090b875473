"""The simulated internet of the benchmark: organisations, their mail servers and DNS records.

Everything is derived from a seeded `random.Random`, so one seed gives one world. `World.zones`
is the YAML zone data `mailward.dns.ZoneResolver` reads (``name: [{TYPE: value}, ...]``).
Addresses: senders use the documentation networks (192.0.2/24, 198.51.100/24, 203.0.113/24,
2001:db8::/32), attackers the benchmarking network 198.18.0.0/15, SPF decoys 100.64.0.0/10.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from keys import DkimKey, KeyStore

SITE_DOMAIN = "ourcorp.example"
AUTHSERV_ID = "mx.ourcorp.example"
TRUSTED_LIST = "lists.opensource-forum.example"

SENDER_NAMES = [
    "northwind.example", "contoso-bank.example", "fabrikam.example", "tailspin-toys.example",
    "adventure-works.example", "wingtip.example", "litware.example", "proseware.example",
    "woodgrove-bank.example", "lucerne-publishing.example", "alpine-ski.example",
    "blue-yonder.example", "coho-winery.example", "fourth-coffee.example", "humongous.example",
    "margies-travel.example", "northridge.example", "relecloud.example", "southridge.example",
    "trey-research.example", "wide-world.example", "city-power.example", "datum-corp.test",
    "consolidated.test", "graphic-design.test", "school-district.test", "tax-office.test",
    "health-clinic.test",
]
LEGACY_NAMES = ["old-hardware.test", "family-farm.test", "village-club.test", "retired.test"]
ATTACKER_NAMES = ["bulk-blaster.test", "cheap-send.test", "vps-rental.test", "promo-mass.test"]
LOOKALIKES = {
    "ourc0rp.example": SITE_DOMAIN,
    "ourcorp-it.example": SITE_DOMAIN,
    "our-corp.example": SITE_DOMAIN,
    "contoso-bank-secure.example": "contoso-bank.example",
    "woodgrove-bnak.example": "woodgrove-bank.example",
    "northwlnd.example": "northwind.example",
}


@dataclass(slots=True)
class Server:
    host: str
    ip: str


@dataclass(slots=True)
class Selector:
    name: str
    key: DkimKey
    domain: str  # the d= this selector signs for


@dataclass(slots=True)
class Org:
    """One organisation that sends mail (or pretends to)."""

    domain: str
    role: str  # sender, legacy, site, esp, list, forwarder, attacker, lookalike
    servers: list[Server] = field(default_factory=list)
    selectors: list[Selector] = field(default_factory=list)
    dmarc: dict[str, str] | None = None
    spf_all: str = "-all"
    canonicalization: tuple[bytes, bytes] = (b"relaxed", b"relaxed")
    oversign_from: bool = False
    length_tag: bool = False
    esp: str | None = None
    subdomains: list[str] = field(default_factory=list)
    esp_selector: Selector | None = None  # the key an ESP signs with for this customer

    def policy_for(self, from_domain: str, exists: bool = True) -> str | None:
        """The DMARC policy (RFC 9989: p, sp, np) that applies to a failing From domain."""
        if self.dmarc is None:
            return None
        if from_domain == self.domain:
            return self.dmarc["p"]
        if not exists and "np" in self.dmarc:
            return self.dmarc["np"]
        return self.dmarc.get("sp", self.dmarc["p"])


class World:
    """All organisations plus the zone data that describes them."""

    def __init__(self, seed: int, keys: KeyStore) -> None:
        self.rng = random.Random(f"world/{seed}")
        self.keys = keys
        self.zones: dict[str, list[dict[str, Any]]] = {}
        self.orgs: dict[str, Org] = {}
        self._blocks = self._legit_blocks()
        self._decoy = 0
        self._build()

    # --- records -------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, value: Any) -> None:
        entries = self.zones.setdefault(name, [])
        if {rdtype: value} not in entries:
            entries.append({rdtype: value})

    def _host(self, host: str, ip: str, ptr: bool = True) -> Server:
        self.add(host, "AAAA" if ":" in ip else "A", ip)
        if ptr:
            self.add(ipaddress.ip_address(ip).reverse_pointer, "PTR", host)
        return Server(host, ip)

    @staticmethod
    def _legit_blocks() -> list[ipaddress.IPv4Network]:
        blocks: list[ipaddress.IPv4Network] = []
        for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"):
            blocks.extend(ipaddress.ip_network(net).subnets(new_prefix=28))
        return blocks

    def _next_block(self) -> ipaddress.IPv4Network:
        return self._blocks.pop(0)

    def _decoys(self, count: int) -> list[str]:
        out = []
        for _ in range(count):
            self._decoy += 1
            out.append(f"ip4:100.{64 + self._decoy // 200}.{self._decoy % 200}.0/24")
        return out

    def _key(self, name: str, algorithm: str = "rsa-sha256") -> DkimKey:
        return self.keys.get(name, algorithm)

    def _publish_selector(self, domain: str, selector: str, key: DkimKey) -> Selector:
        self.add(f"{selector}._domainkey.{domain}", "TXT", key.txt_record())
        return Selector(selector, key, domain)

    def _publish_dmarc(self, domain: str, tags: dict[str, str]) -> None:
        text = "v=DMARC1; " + "; ".join(f"{k}={v}" for k, v in tags.items() if k != "v")
        self.add(f"_dmarc.{domain}", "TXT", text)

    # --- SPF -------------------------------------------------------------------------------

    def _spf_chain(self, org: Org, leaf: list[str], extra_top: list[str]) -> None:
        """Publish an SPF chain of 1-4 records for ``org``: includes down to ``leaf``."""
        rng = self.rng
        depth = rng.choice([1, 2, 2, 3, 3, 4])
        names = [org.domain, f"_spf.{org.domain}", f"_spf2.{org.domain}",
                 f"_netblocks.{org.domain}"][:depth]
        for i, name in enumerate(names):
            terms = self._decoys(rng.randint(0, 3))
            last = i == len(names) - 1
            if last:
                terms += leaf
            else:
                terms.append(f"include:{names[i + 1]}")
            if i == 0:
                terms += extra_top
            if not last and i == 0 and rng.random() < 0.25:
                # "v=spf1 ... redirect=_spf.x": the next record decides, ``all`` omitted
                terms = [t for t in terms if t != f"include:{names[1]}"]
                terms.append(f"redirect={names[1]}")
                self.add(name, "TXT", "v=spf1 " + " ".join(terms))
                continue
            self.add(name, "TXT", "v=spf1 " + " ".join([*terms, org.spf_all]))

    def _leaf_terms(self, org: Org, block: ipaddress.IPv4Network) -> list[str]:
        style = self.rng.choice(["ip4", "ip4", "a", "mx", "ip4+ip6"])
        if style == "a":
            return [f"a:{s.host}" for s in org.servers if ":" not in s.ip]
        if style == "mx":  # the MX host, then the other servers by name (explicit domains:
            # in an included record a bare "mx" would mean the included name's MX)
            return [f"mx:{org.domain}",
                    *(f"a:{s.host}" for s in org.servers[1:] if ":" not in s.ip)]
        terms = [f"ip4:{block}"]
        if style == "ip4+ip6":
            terms.append(f"ip6:2001:db8:{block.network_address.packed[2]:x}"
                         f"{block.network_address.packed[3]:02x}::/48")
        return terms

    def _servers(self, org: Org, block: ipaddress.IPv4Network, count: int) -> None:
        hosts = list(block.hosts())
        for i in range(count):
            org.servers.append(self._host(f"mail{i + 1}.{org.domain}", str(hosts[4 + i])))
        # inbound MX = the first outbound server (so "mx" in SPF authorizes it)
        self.add(org.domain, "MX", [10, org.servers[0].host])
        self.add(org.domain, "A", str(hosts[1]))
        if self.rng.random() < 0.4:  # HELO identity records (RFC 7208 2.3)
            for server in org.servers:
                self.add(server.host, "TXT", "v=spf1 a -all")

    def _dmarc_tags(self) -> dict[str, str]:
        rng = self.rng
        tags = {"p": rng.choices(["reject", "quarantine", "none"], (0.35, 0.3, 0.35))[0]}
        if rng.random() < 0.3:
            tags["sp"] = rng.choice(["reject", "quarantine", "none"])
        if rng.random() < 0.3:
            tags["np"] = "reject"
        if rng.random() < 0.1:
            tags["adkim"] = "s"
        if rng.random() < 0.1:
            tags["aspf"] = "s"
        tags["rua"] = "mailto:dmarc-reports@reports.example"
        return tags

    # --- organisations ---------------------------------------------------------------------

    def _build(self) -> None:
        rng = self.rng
        for name in ("esp-mailer.example", "bulk-post.example", "hr-cloud.example"):
            self._esp(name)
        self._site()
        for name in SENDER_NAMES:
            self._sender(name, esp=rng.choice([None, None, "esp-mailer.example",
                                               "bulk-post.example"]))
        for name in LEGACY_NAMES:
            self._legacy(name)
        self._list()
        self._forwarder()
        for index, name in enumerate(ATTACKER_NAMES):
            self._attacker(name, index)
        for index, name in enumerate(LOOKALIKES):
            self._lookalike(name, index)

    def _esp(self, domain: str) -> None:
        org = Org(domain, "esp")
        first, second = self._next_block(), self._next_block()
        for i, block in enumerate((first, second)):
            host = f"o{i + 1}.out.{domain}"
            org.servers.append(self._host(host, str(list(block.hosts())[7])))
        self.add(f"_spf.{domain}", "TXT",
                 f"v=spf1 ip4:{first} include:_spf2.{domain} ~all")
        self.add(f"_spf2.{domain}", "TXT",
                 f"v=spf1 ip4:{second} ip6:2001:db8:e5{len(self.orgs):x}::/48 -all")
        self.add(f"bounces.{domain}", "TXT", f"v=spf1 include:_spf.{domain} -all")
        self.add(domain, "TXT", f"v=spf1 include:_spf.{domain} -all")
        self.add(domain, "MX", [10, org.servers[0].host])
        org.selectors.append(self._publish_selector(domain, "esp", self._key(f"{domain}/esp")))
        self._publish_dmarc(domain, {"p": "reject"})
        self.orgs[domain] = org

    def _site(self) -> None:
        org = Org(SITE_DOMAIN, "site", dmarc={"p": "reject", "np": "reject"})
        block = self._next_block()
        self._servers(org, block, 2)
        self._spf_chain(org, [f"ip4:{block}"], ["include:_spf.hr-cloud.example"])
        org.selectors.append(self._publish_selector(SITE_DOMAIN, "s2026",
                                                    self._key(f"{SITE_DOMAIN}/s2026")))
        hr_selector = self._publish_selector(SITE_DOMAIN, "hr",
                                             self._key(f"{SITE_DOMAIN}/hr"))
        org.esp, org.esp_selector = "hr-cloud.example", hr_selector
        self._publish_dmarc(SITE_DOMAIN, org.dmarc or {})
        self.orgs[SITE_DOMAIN] = org

    def _sender(self, domain: str, esp: str | None) -> None:
        rng = self.rng
        org = Org(domain, "sender", esp=esp)
        org.spf_all = rng.choices(["-all", "~all", "?all"], (0.6, 0.35, 0.05))[0]
        org.dmarc = self._dmarc_tags()
        org.canonicalization = rng.choices(
            [(b"relaxed", b"relaxed"), (b"relaxed", b"simple"), (b"simple", b"simple")],
            (0.7, 0.2, 0.1))[0]
        org.oversign_from = rng.random() < 0.3
        org.length_tag = rng.random() < 0.1
        block = self._next_block()
        self._servers(org, block, rng.choice([1, 2, 2, 3]))
        if rng.random() < 0.2:  # a dual-stack server
            org.servers.append(self._host(
                f"mail6.{domain}",
                f"2001:db8:{block.network_address.packed[2]:x}"
                f"{block.network_address.packed[3]:02x}::25"))
        leaf = self._leaf_terms(org, block)
        if any(":" in s.ip for s in org.servers) and not any(t.startswith("ip6") for t in leaf):
            leaf.append(f"ip6:{org.servers[-1].ip}/128")
        extra = [f"include:_spf.{esp}"] if esp else []
        self._spf_chain(org, leaf, extra)
        # keys: RSA-2048 for everyone, Ed25519 beside it for some, Ed25519 alone for one
        if domain == "fourth-coffee.example":
            org.selectors.append(self._publish_selector(
                domain, "ed", self._key(f"{domain}/ed", "ed25519-sha256")))
        else:
            selector = rng.choice(["s2026", "selector1", "k1", "mail", "dkim"])
            org.selectors.append(self._publish_selector(
                domain, selector, self._key(f"{domain}/{selector}")))
            if rng.random() < 0.25:
                org.selectors.append(self._publish_selector(
                    domain, "ed2026", self._key(f"{domain}/ed2026", "ed25519-sha256")))
        if esp is not None:
            org.esp_selector = self._esp_customer_key(org, esp)
        if rng.random() < 0.5:  # a sending subdomain with its own SPF
            sub = rng.choice(["news", "billing", "notify", "e"]) + "." + domain
            org.subdomains.append(sub)
            self.add(sub, "TXT", f"v=spf1 include:{domain} {org.spf_all}")
            self.add(sub, "MX", [10, org.servers[0].host])
        self._publish_dmarc(domain, org.dmarc)
        self.orgs[domain] = org

    def _esp_customer_key(self, org: Org, esp: str) -> Selector:
        key = self._key(f"{org.domain}/{esp}")
        if esp == "esp-mailer.example":  # delegated by CNAME, the ESP hosts the key
            target = f"s1.{org.domain.replace('.', '-')}.dkim.{esp}"
            self.add(target, "TXT", key.txt_record())
            self.add(f"s1._domainkey.{org.domain}", "CNAME", target)
            return Selector("s1", key, org.domain)
        return self._publish_selector(org.domain, "bp1", key)

    def _legacy(self, domain: str) -> None:
        org = Org(domain, "legacy", spf_all=self.rng.choice(["-all", "~all"]))
        self._servers(org, self._next_block(), 1)
        self.add(domain, "TXT", f"v=spf1 a mx {org.spf_all}")
        self.orgs[domain] = org

    def _list(self) -> None:
        org = Org(TRUSTED_LIST, "list")
        self._servers(org, self._next_block(), 1)
        self.add(TRUSTED_LIST, "TXT", f"v=spf1 ip4:{org.servers[0].ip} -all")
        org.selectors.append(self._publish_selector(TRUSTED_LIST, "arc",
                                                    self._key(f"{TRUSTED_LIST}/arc")))
        self._publish_dmarc("opensource-forum.example", {"p": "none"})
        self.orgs[TRUSTED_LIST] = org

    def _forwarder(self) -> None:
        org = Org("alumni-mail.example", "forwarder")
        self._servers(org, self._next_block(), 1)
        self.add(org.domain, "TXT", f"v=spf1 ip4:{org.servers[0].ip} -all")
        self.orgs[org.domain] = org

    def _attacker(self, domain: str, index: int) -> None:
        org = Org(domain, "attacker")
        for i in range(3):
            ip = f"198.18.{index * 8 + i}.{10 + i}"
            org.servers.append(self._host(f"vps{i}.{domain}", ip, ptr=i != 2))
        self.add(domain, "TXT", f"v=spf1 ip4:198.18.{index * 8}.0/21 ~all")
        org.selectors.append(self._publish_selector(domain, "default",
                                                    self._key(f"{domain}/default")))
        for algorithm in ("rsa-sha256", "ed25519-sha256"):  # keys it forges signatures with
            self._key(f"{domain}/forger-{algorithm}", algorithm)
        if index % 2 == 0:
            self._publish_dmarc(domain, {"p": "none"})
        self.orgs[domain] = org

    def _lookalike(self, domain: str, index: int) -> None:
        org = Org(domain, "lookalike")
        ip = f"198.19.{index}.25"
        org.servers.append(self._host(f"mail.{domain}", ip))
        if index % 3 != 2:  # most lookalikes are fully authenticated; some are bare
            self.add(domain, "TXT", f"v=spf1 ip4:{ip} -all")
            org.selectors.append(self._publish_selector(domain, "s1",
                                                        self._key(f"{domain}/s1")))
            org.dmarc = {"p": "none"}
            self._publish_dmarc(domain, org.dmarc)
        self.orgs[domain] = org

    # --- queries for the generator ---------------------------------------------------------

    def by_role(self, *roles: str) -> list[Org]:
        return [o for o in self.orgs.values() if o.role in roles]

    def attacker_ip(self, rng: random.Random) -> tuple[str, str]:
        """A client with no relation to any sender: (IP, HELO)."""
        a, b = rng.randrange(64, 128), rng.randrange(1, 255)
        ip = f"198.18.{a}.{b}"
        return ip, rng.choice([f"host-198-18-{a}-{b}.dyn.vps-rental.test", "localhost",
                               "mail.ourcorp.example", f"ip{a}-{b}.cheap-send.test"])
