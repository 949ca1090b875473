"""The verdict: scores from config, thresholds, forced outcomes, ARC override, explanations."""

from __future__ import annotations

from mailward import config
from mailward.model import Disposition, Finding, Result
from mailward.verdict import Scorer, default_scores


def f(symbol: str, result: Result = Result.FAIL, detail: str = "d") -> Finding:
    return Finding(symbol.split("_")[0].lower(), symbol, result, detail=detail)


def decide(*findings: Finding, **cfg: object):  # type: ignore[no-untyped-def]
    scorer = Scorer(config.from_dict(dict(cfg)))
    return scorer.decide(scorer.score(list(findings)), "example.com")


def test_all_pass_accepts() -> None:
    v = decide(
        f("SPF_PASS", Result.PASS), f("DKIM_PASS", Result.PASS), f("DMARC_PASS", Result.PASS)
    )
    assert v.disposition is Disposition.ACCEPT and v.score < 0 and v.forced_by is None
    assert "really from example.com" in v.recipient_explanation


def test_dmarc_reject_is_forced_and_explained() -> None:
    v = decide(f("DMARC_FAIL_REJECT", detail="example.com publishes p=reject"))
    assert v.disposition is Disposition.REJECT and v.forced_by == "DMARC_FAIL_REJECT"
    assert v.reasons[0].startswith("forced: DMARC_FAIL_REJECT -> reject")
    assert "example.com did not send it" in v.recipient_explanation


def test_forced_outcome_is_configurable() -> None:
    v = decide(
        f("DMARC_FAIL_REJECT"),
        verdict={"forced": {"DMARC_FAIL_REJECT": "quarantine"}},
        scores={"DMARC_FAIL_REJECT": 11.0},
    )
    assert v.disposition is Disposition.QUARANTINE


def test_quarantine_and_none_policies() -> None:
    assert decide(f("DMARC_FAIL_QUARANTINE")).disposition is Disposition.QUARANTINE
    assert decide(f("DMARC_FAIL_NONE")).disposition is Disposition.TAG


def test_temperror_decides_tempfail_but_not_over_a_certain_reject() -> None:
    v = decide(f("DMARC_TEMPERROR", Result.TEMPERROR))
    assert v.disposition is Disposition.TEMPFAIL
    v = decide(f("DMARC_TEMPERROR", Result.TEMPERROR), scores={"SPF_FAIL": 20.0}, **{})
    assert v.disposition is Disposition.TEMPFAIL  # no other finding: still tempfail
    v = decide(f("DMARC_TEMPERROR", Result.TEMPERROR), f("SPF_FAIL"), scores={"SPF_FAIL": 20.0})
    assert v.disposition is Disposition.REJECT


def test_scores_add_up_to_thresholds() -> None:
    v = decide(f("SPF_FAIL"), f("DKIM_FAIL"), scores={"SPF_FAIL": 6.0, "DKIM_FAIL": 5.0})
    assert v.disposition is Disposition.QUARANTINE and v.score == 11.0
    assert any(r.startswith("SPF_FAIL (+6)") for r in v.reasons)


def test_trusted_arc_sealer_overrides_dmarc_failure_visibly() -> None:
    v = decide(
        f("DMARC_FAIL_REJECT"),
        f("ARC_TRUSTED_SEALER", Result.PASS, detail="lists.example.org vouched dmarc=pass"),
    )
    assert v.disposition is Disposition.ACCEPT
    assert any("override" in r and "lists.example.org" in r for r in v.reasons)


def test_default_score_table_covers_forced_symbols() -> None:
    scores = default_scores()
    for symbol in config.Config().verdict.forced:
        if not symbol.endswith("TEMPERROR"):
            assert symbol in scores
