"""What a check is: a declared name, symbols, dependencies and budget, and one async method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mailward.config import Config
from mailward.dns import Resolver
from mailward.history import SenderHistory
from mailward.model import Finding, Result, Transaction


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may use: the resolver, the configuration, its dependencies' findings, the
    time of evaluation (seconds since the epoch) and, when the hub has a store, the sender
    history (None: there is no history to ask)."""

    resolver: Resolver
    config: Config
    results: Mapping[str, Sequence[Finding]]
    now: float
    history: SenderHistory | None = None

    def method_results(self, check: str) -> list[Finding]:
        return [f for f in self.results.get(check, ()) if f.method_result]


class Check:
    """Base of every check. Subclasses set the class attributes and implement `run`.

    A check only returns findings: it never replies, never stores, never edits the message.
    Trouble it can name (DNS could not answer, a record is broken) is a `temperror` or
    `permerror` finding; the runner turns anything else (a crash, the budget running out) into
    a ``<NAME>_TEMPERROR`` finding.

    The runner starts `run` inline and makes it a task of its own only when it awaits something
    that is not ready (a warm-cache check costs no task); so a check must not bind to the
    current task (``asyncio.timeout``, ``current_task``) before its first real wait: its
    ``budget`` is the timeout.
    """

    name: ClassVar[str]
    symbols: ClassVar[frozenset[str]]
    depends: ClassVar[tuple[str, ...]] = ()
    budget: ClassVar[float] = 10.0

    def __init__(self, config: Config) -> None:
        self.config = config

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        raise NotImplementedError

    def finding(self, symbol: str, result: Result, detail: str = "", **kwargs: Any) -> Finding:
        assert symbol in self.symbols, f"{self.name} does not declare {symbol}"
        return Finding(self.name, symbol, result, detail, **kwargs)
