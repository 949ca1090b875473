"""Where the engine's time goes: cProfile rows per function and self time per module."""

from __future__ import annotations

import cProfile
import pstats
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_SITE = "site-packages/"


@dataclass(frozen=True, slots=True)
class Row:
    where: str
    calls: int
    self_ms: float  # per message
    cumulative_ms: float  # per message


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name  # a builtin, e.g. "<built-in method _hashlib.openssl_sha256>"
    path = filename.replace("\\", "/")
    if "/src/mailward/" in path:
        path = "mailward/" + path.split("/src/mailward/", 1)[1]
    elif _SITE in path:
        path = path.split(_SITE, 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/", 1)[1].split("/", 1)[1]
    else:
        path = Path(path).name
    return f"{path}:{line}({name})"


def top(profiler: cProfile.Profile, messages: int, key: str, count: int) -> list[Row]:
    """The ``count`` functions with the most ``key`` time ("tottime" or "cumulative")."""
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    ordered = sorted(raw.items(), key=lambda kv: kv[1][2 if key == "tottime" else 3],
                     reverse=True)
    per = 1000.0 / max(1, messages)
    return [Row(_where(func), nc, tt * per, ct * per)
            for func, (_cc, nc, tt, ct, _callers) in ordered[:count]]


def by_module(profiler: cProfile.Profile, messages: int, count: int) -> list[tuple[str, float]]:
    """Self time per source file (ms per message), largest first."""
    totals: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, _callers) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        totals[_where(func).rsplit(":", 1)[0] if func[0] != "~" else "builtins"] += tt
    per = 1000.0 / max(1, messages)
    return sorted(((m, t * per) for m, t in totals.items()), key=lambda x: -x[1])[:count]


def total_ms(profiler: cProfile.Profile, messages: int) -> float:
    stats = pstats.Stats(profiler)
    return stats.total_tt * 1000.0 / max(1, messages)  # type: ignore[attr-defined]


def format_rows(title: str, rows: list[Row]) -> str:
    lines = [title, f"  {'self ms':>8} {'cum ms':>8} {'calls':>9}  function (per message)"]
    for row in rows:
        lines.append(f"  {row.self_ms:8.4f} {row.cumulative_ms:8.4f} {row.calls:9d}  "
                     f"{row.where}")
    return "\n".join(lines)


def per_check(profiler: cProfile.Profile, messages: int) -> list[tuple[str, float]]:
    """CPU per message inside each check's ``run`` (cumulative, awaits excluded)."""
    out = []
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in \
            pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if name == "run" and "/mailward/checks/" in path:
            out.append((Path(path).stem, ct * 1000.0 / max(1, messages)))
    return sorted(out, key=lambda x: -x[1])
