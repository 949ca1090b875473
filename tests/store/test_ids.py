"""Row ids: 32 hex digits, unique, in creation order."""

from __future__ import annotations

import re

from mailward.store.ids import new_id


def test_ids_are_unique_hex_and_time_ordered() -> None:
    made = [new_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in made)
    assert len(set(made)) == len(made)
    prefixes = [i[:16] for i in made]
    assert prefixes == sorted(prefixes)
