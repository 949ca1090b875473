"""The checks: each module declares one `Check`; `registry()` lists them by name."""

from __future__ import annotations

from mailward.checks.base import Check, CheckContext

__all__ = ["Check", "CheckContext", "registry"]


def registry() -> dict[str, type[Check]]:
    """Every available check class by name (imported here, not at package import)."""
    from mailward.checks.arc import ArcCheck
    from mailward.checks.content import ContentCheck
    from mailward.checks.dkim import DkimCheck
    from mailward.checks.dmarc import DmarcCheck
    from mailward.checks.envelope import EnvelopeCheck
    from mailward.checks.identity import IdentityCheck
    from mailward.checks.spf import SpfCheck

    classes: list[type[Check]] = [
        SpfCheck, DkimCheck, ArcCheck, DmarcCheck, EnvelopeCheck, IdentityCheck, ContentCheck
    ]
    return {cls.name: cls for cls in classes}
