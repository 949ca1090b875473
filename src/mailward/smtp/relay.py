"""Which RCPT TO addresses the inbound listener accepts: only plain mailboxes of the site.

Every classic relay trick is refused rather than interpreted: source routes (``@a:b@c``), the
percent hack (``user%other@site``), UUCP bang paths (``other!user@site``), quoted local parts
carrying ``@``/``%``/``!``, several ``@``, IP literals and trailing dots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*$")


@dataclass(frozen=True, slots=True)
class RecipientCheck:
    accepted: bool
    reason: str = ""
    address: str = ""


def check_recipient(path: str, site_domains: frozenset[str]) -> RecipientCheck:
    """Decide whether ``path`` (the RCPT TO argument, with or without <>) is ours to accept."""
    address = path.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    if not address:
        return RecipientCheck(False, "empty recipient")
    if address.startswith("@"):
        return RecipientCheck(False, "source routes are not accepted")
    if address.count("@") != 1 or address.startswith('"'):
        return RecipientCheck(False, "only plain user@domain recipients are accepted")
    local, domain = address.split("@")
    if "%" in local or "!" in local:
        return RecipientCheck(False, "relay syntax in the local part is not accepted")
    if not _DOT_ATOM.match(local) or len(local) > 64:
        return RecipientCheck(False, "malformed local part")
    if domain.endswith(".") or domain.startswith("["):
        return RecipientCheck(False, "only the site's domain names are accepted")
    domain = domain.lower()
    if domain in site_domains:  # our own names (single-label "localhost" included)
        return RecipientCheck(True, address=f"{local}@{domain}")
    if not _DOMAIN.match(domain):
        return RecipientCheck(False, "malformed domain")
    return RecipientCheck(False, "relay denied")
