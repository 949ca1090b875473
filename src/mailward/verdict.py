"""The one place that picks the action: scores from config, thresholds, forced outcomes."""

from __future__ import annotations

import logging
import tomllib
from functools import cache
from importlib import resources

from mailward.config import Config
from mailward.model import Disposition, Finding, Verdict

log = logging.getLogger(__name__)

# When two findings force different outcomes, the stronger wins; a certain reject needs no retry.
_FORCE_ORDER = [
    Disposition.ACCEPT,
    Disposition.TAG,
    Disposition.QUARANTINE,
    Disposition.TEMPFAIL,
    Disposition.REJECT,
]
_FORCE_RANK = {d: i for i, d in enumerate(_FORCE_ORDER)}
_OVERRIDABLE_BY_ARC = frozenset({"DMARC_FAIL_REJECT", "DMARC_FAIL_QUARANTINE", "DMARC_FAIL_NONE"})


def _minus_score(f: Finding) -> float:
    return -f.score


@cache
def default_scores() -> dict[str, float]:
    """The shipped score table (``scores.toml`` in the package)."""
    text = resources.files("mailward").joinpath("scores.toml").read_text(encoding="utf-8")
    return {k: float(v) for k, v in tomllib.loads(text).items()}


class Scorer:
    """Turns findings into a Verdict. Pure: same findings and config, same verdict."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.scores = {**default_scores(), **config.scores}
        self.forced = {k: Disposition(v) for k, v in config.verdict.forced.items()}

    def score(self, findings: list[Finding]) -> list[Finding]:
        scores = self.scores
        trusted_arc = any(f.symbol == "ARC_TRUSTED_SEALER" for f in findings)
        out = []
        for f in findings:
            symbol = f.symbol
            score = scores.get(symbol, 0.0)
            if trusted_arc and symbol in _OVERRIDABLE_BY_ARC:
                score = 0.0
            if score != f.score:  # a copy with the score (dataclasses.replace, but cheaper)
                f = Finding(f.check, symbol, f.result, f.detail, f.advice, score,
                            f.method_result, f.properties, f.reason)
            out.append(f)
        return out

    def decide(self, findings: list[Finding], from_domain: str | None = None) -> Verdict:
        total = sum(f.score for f in findings)
        v = self.config.verdict
        if total >= v.reject:
            by_score = Disposition.REJECT
        elif total >= v.quarantine:
            by_score = Disposition.QUARANTINE
        elif total >= v.tag:
            by_score = Disposition.TAG
        else:
            by_score = Disposition.ACCEPT
        reasons: list[str] = []
        trusted = [f for f in findings if f.symbol == "ARC_TRUSTED_SEALER"]
        forced: tuple[Disposition, Finding] | None = None
        forcing = self.forced
        for f in findings:
            wanted = forcing.get(f.symbol)
            if wanted is None:
                continue
            if trusted and f.symbol in _OVERRIDABLE_BY_ARC:
                reasons.append(
                    f"override: {f.symbol} would force {wanted}, but {trusted[0].detail}"
                )
                log.info("ARC override of %s: %s", f.symbol, trusted[0].detail)
                continue
            if forced is None or _FORCE_RANK[wanted] > _FORCE_RANK[forced[0]]:
                forced = (wanted, f)
        disposition = by_score
        forced_by = None
        if forced is not None:
            wanted, finding = forced
            if wanted is Disposition.TEMPFAIL:
                if by_score is not Disposition.REJECT:
                    disposition = Disposition.TEMPFAIL
            elif _FORCE_RANK[wanted] > _FORCE_RANK[by_score] or (
                by_score is Disposition.TEMPFAIL
            ):
                disposition = wanted
            if disposition is wanted:
                forced_by = finding.symbol
                reasons.insert(0, f"forced: {finding.symbol} -> {wanted}: {finding.detail}")
                log.info("forced outcome %s by %s: %s", wanted, finding.symbol, finding.detail)
        reasons.append(
            f"score {total:.1f} (tag at {v.tag:g}, quarantine at {v.quarantine:g}, "
            f"reject at {v.reject:g}) -> {by_score}"
        )
        positive = [f for f in findings if f.score > 0]
        positive.sort(key=_minus_score)  # stable: equal scores keep their order
        reasons += [f"{f.symbol} (+{f.score:g}): {f.detail}" for f in positive]
        verdict = Verdict(disposition, total, findings, reasons, forced_by)
        verdict.admin_explanation = "; ".join(reasons[:3])
        verdict.recipient_explanation = explain(disposition, findings, from_domain)
        return verdict


def explain(disposition: Disposition, findings: list[Finding], from_domain: str | None) -> str:
    """Two sentences a non-expert understands: what is wrong, and what it means for them."""
    who = from_domain or "an unknown sender"
    dmarc_fail = next((f for f in findings if f.symbol.startswith("DMARC_FAIL")), None)
    if dmarc_fail is not None and any(f.symbol == "ARC_TRUSTED_SEALER" for f in findings):
        return (
            f"This message claims to be from {who} and was changed on the way by a forwarder "
            f"the site trusts, so {who}'s own checks no longer match. The forwarder vouches "
            "that it was genuine when it arrived there."
        )
    if dmarc_fail is not None:
        return (
            f"This message claims to be from {who}, but {who} did not send it: it came from a "
            f"server {who} does not authorize and carries no valid signature of {who}. "
            "Treat it as forged: do not reply, click links or follow its instructions."
        )
    if disposition is Disposition.TEMPFAIL:
        return (
            f"We could not yet confirm whether this message really comes from {who}, because "
            "the sender's DNS did not answer. The sending server will retry later."
        )
    worst = max((f for f in findings if f.score > 0), key=lambda f: f.score, default=None)
    if disposition is Disposition.ACCEPT or worst is None:
        if any(f.symbol == "DMARC_PASS" for f in findings):
            return (
                f"This message is really from {who}: {who}'s own published rules confirm it. "
                "As always, be careful with requests for passwords or money."
            )
        return (
            f"Nothing suspicious was found about this message from {who}. "
            f"{who} publishes no rules to confirm its senders, so its origin cannot be proven."
        )
    advice = worst.advice or "Be careful with its links, attachments and requests."
    return f"This message from {who} looks suspicious: {worst.detail}. {advice}"
