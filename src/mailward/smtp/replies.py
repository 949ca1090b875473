"""Enhanced status codes (RFC 2034, RFC 3463) on the replies aiosmtpd words without one.

Once ENHANCEDSTATUSCODES is advertised, every 2xx, 4xx and 5xx reply carries a code, except the
greeting and the answers to HELO and EHLO. Our own replies already have theirs; aiosmtpd's
("500 Error: bad syntax", "503 Error: need MAIL command", ...) get the one RFC 5248 registers for
the reply code.
"""

from __future__ import annotations

import re

_HAS_CODE = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?:\s|$)")
_REPLY = re.compile(r"^([245])(\d\d)([ -])(.*)$", re.S)

# reply code -> enhanced code (RFC 5248's registry; X.0.0 for the others of a class)
DEFAULTS = {
    "221": "2.0.0", "235": "2.7.0", "250": "2.0.0", "252": "2.0.0", "220": "2.0.0",
    "421": "4.3.0", "451": "4.3.0", "452": "4.3.1", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "538": "5.7.11", "550": "5.0.0", "552": "5.3.4",
    "553": "5.1.3", "554": "5.0.0", "555": "5.5.4",
}


def with_enhanced_code(reply: str) -> str:
    """``reply`` with an enhanced status code after the reply code, when it has none."""
    if _HAS_CODE.match(reply):
        return reply
    match = _REPLY.match(reply)
    if match is None:
        return reply  # 334, 354, or not a reply line at all
    klass, rest, sep, text = match.groups()
    code = DEFAULTS.get(klass + rest, f"{klass}.0.0")
    return f"{klass}{rest}{sep}{code} {text}".rstrip()
