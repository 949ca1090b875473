"""How an Evaluation is shown: plain words for people, one JSON object for scripts."""

from __future__ import annotations

from mailward.model import Message
from mailward.pipeline import Evaluation

_METHOD_WORDS = {
    "pass": "verified",
    "fail": "failed",
    "softfail": "failed (the domain says: probably not authorized)",
    "neutral": "the domain makes no assertion",
    "none": "nothing to check",
    "temperror": "could not be checked now (temporary DNS or time problem)",
    "permerror": "could not be checked (the domain's records are broken)",
    "policy": "verified, but not accepted by local policy",
}


def json_report(evaluation: Evaluation) -> dict[str, object]:
    return {
        "authentication_results": evaluation.authentication_results.replace("\r\n\t", " "),
        "verdict": evaluation.verdict.as_dict(),
        "findings": [f.as_dict() for f in evaluation.findings],
    }


def human_report(evaluation: Evaluation, message: Message) -> str:
    lines = []
    parsed = message.parsed
    sender = ", ".join(a.address for a in parsed.from_addresses) or "(no From address)"
    lines.append(f"From: {sender}")
    lines.append("")
    for f in evaluation.findings:
        if not f.method_result:
            continue
        words = _METHOD_WORDS.get(str(f.result), str(f.result))
        label = f.check
        d, s = f.prop("header.d"), f.prop("header.s")
        if d:
            label += f" ({d}" + (f", selector {s})" if s else ")")
        lines.append(f"  {label:<32} {f.result:<10} {words}: {f.detail}")
    lines.append("")
    lines.append("Findings:")
    for f in sorted(evaluation.findings, key=lambda f: -f.score):
        lines.append(f"  {f.score:+6.1f}  {f.symbol:<30} {f.detail}")
    v = evaluation.verdict
    lines.append("")
    lines.append(f"Disposition: {v.disposition.upper()} (score {v.score:.1f})")
    for reason in v.reasons[:4]:
        lines.append(f"  - {reason}")
    lines.append("")
    lines.append(v.recipient_explanation)
    return "\n".join(lines)
