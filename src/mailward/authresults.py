"""RFC 8601 Authentication-Results: building our header and spotting forged ones."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailward.model import Finding

METHOD_ORDER = ("spf", "dkim", "arc", "dmarc")
_METHOD_RANK = {m: i for i, m in enumerate(METHOD_ORDER)}
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~@/=]+$")


def _value(text: str) -> str:
    if _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def method_entry(finding: Finding) -> str:
    parts = [f"{finding.check}={finding.result}"]
    if finding.reason:
        parts.append(f"reason={_value(finding.reason)}")
    parts += [f"{key}={_value(value)}" for key, value in finding.properties if value]
    return " ".join(parts)


def _method_rank(finding: Finding) -> int:
    return _METHOD_RANK.get(finding.check, len(_METHOD_RANK))


def build(authserv_id: str, findings: Iterable[Finding]) -> str:
    """The header value: ``authserv-id; method=result ptype.prop=value; ...`` (or ``; none``)."""
    results = [f for f in findings if f.method_result]
    if not results:
        return f"{authserv_id}; none"
    results.sort(key=_method_rank)
    return f"{authserv_id};\r\n\t" + ";\r\n\t".join([method_entry(f) for f in results])


def authserv_id_of(value: str) -> str:
    """The authserv-id an Authentication-Results value claims (comments and version dropped)."""
    head = re.sub(r"\([^)]*\)", " ", value.split(";", 1)[0]).split()
    return head[0].lower() if head else ""
