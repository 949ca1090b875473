"""Prometheus metrics of the hub (messages by disposition, check results, DNS cache, queue depth,
deliveries) and the ``/metrics`` endpoint on the web port, served inside the hub's event loop.

One ``Metrics`` per process, with its own registry (no global state). With several worker
processes, call ``prepare_multiprocess(dir)`` in the master before anything imports
prometheus_client and before forking: every process then writes its counters to files there, and
the master's ``Metrics(multiprocess_dir=dir)`` serves the sum (prometheus-client's multiprocess
mode). DNS cache counters are added up from each resolver's ``stats`` as deltas, so they sum
across processes too; the queue depth is read at scrape time in the process that serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mailward.dns import CacheStats

log = logging.getLogger("mailward.metrics")

# seconds from receipt to a delivery attempt's outcome
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
# seconds the checks took for one message
EVALUATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MAX_REQUEST_HEAD = 16 * 1024
REQUEST_TIMEOUT = 10.0
MAX_CONCURRENT_SCRAPES = 4
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DNS_SYNC_INTERVAL = 1.0  # seconds between DNS cache counter updates from observe_message


class _HasStats(Protocol):
    stats: CacheStats


class _FindingLike(Protocol):
    @property
    def check(self) -> str: ...
    @property
    def result(self) -> Any: ...


def prepare_multiprocess(directory: Path) -> None:
    """Switch prometheus-client to multiprocess mode with its files in ``directory`` (emptied).

    Must run before prometheus_client is first imported in this process (``mailward.metrics``
    imports it only when a ``Metrics`` is made) and before the workers are forked.
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError(
            "prometheus_client was imported before prepare_multiprocess(): its metrics would "
            "stay per process"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)


class Metrics:
    """The hub's metrics. ``observe_message`` per evaluated (or submitted) message,
    ``observe_delivery`` per delivery outcome; ``render`` gives the exposition text."""

    def __init__(
        self,
        *,
        resolver: _HasStats | None = None,
        queue_depth: Callable[[], int] | None = None,
        multiprocess_dir: Path | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.resolver = resolver
        self.queue_depth = queue_depth
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "mailward_messages",
            "Messages by disposition (accept, tag, quarantine, reject, tempfail, submitted)",
            ["disposition"],
            registry=self.registry,
        )
        self.check_results = Counter(
            "mailward_check_results",
            "Findings by check and RFC 8601 result",
            ["check", "result"],
            registry=self.registry,
        )
        self.evaluation_seconds = Histogram(
            "mailward_evaluation_seconds",
            "Seconds the checks took for one message",
            buckets=EVALUATION_BUCKETS,
            registry=self.registry,
        )
        self.dns_hits = Counter(
            "mailward_dns_cache_hits", "DNS answers served from the cache", registry=self.registry
        )
        self.dns_negative_hits = Counter(
            "mailward_dns_cache_negative_hits",
            "Cached NXDOMAIN/NODATA answers served (also counted in hits)",
            registry=self.registry,
        )
        self.dns_misses = Counter(
            "mailward_dns_cache_misses", "DNS queries not in the cache", registry=self.registry
        )
        self.deliveries = Counter(
            "mailward_deliveries",
            "Delivery attempt outcomes per recipient (delivered, deferred, failed, ...)",
            ["status"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "mailward_delivery_seconds",
            "Seconds from receipt of a message to a delivery attempt's outcome, by status",
            ["status"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}  # cached labelled counters
        self._dns_seen = (0, 0, 0)
        self._dns_synced = 0.0
        self._dns_lock = threading.Lock()
        self.serving = self._serving_registry(multiprocess_dir)

    def _serving_registry(self, multiprocess_dir: Path | None) -> Any:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        extra = _ScrapeCollector(self)
        if multiprocess_dir is None:
            self.registry.register(extra)
            return self.registry
        serving = CollectorRegistry()
        MultiProcessCollector(serving, path=str(multiprocess_dir))
        serving.register(extra)
        return serving

    # -- what the hub calls ----------------------------------------------------------------

    def observe_message(
        self,
        disposition: str,
        findings: Iterable[_FindingLike] = (),
        seconds: float | None = None,
    ) -> None:
        """One message decided: its disposition, each finding's (check, result), and how long
        its checks took."""
        self._child("d", str(disposition)).inc()
        counts: dict[tuple[str, str], int] = {}
        for finding in findings:
            key = (finding.check, str(finding.result))
            counts[key] = counts.get(key, 0) + 1
        for (check, result), n in counts.items():
            self._child(check, result).inc(n)
        if seconds is not None:
            self.evaluation_seconds.observe(seconds)
        now = time.monotonic()
        if now - self._dns_synced >= DNS_SYNC_INTERVAL:
            self._dns_synced = now
            self.sync_dns()

    def observe_delivery(self, status: str, seconds: float | None = None) -> None:
        """One delivery attempt's outcome for one recipient, ``seconds`` after receipt."""
        self.deliveries.labels(status).inc()
        if seconds is not None:
            self.delivery_seconds.labels(status).observe(max(0.0, seconds))

    def sync_dns(self) -> None:
        """Add what the resolver's cache counted since the last call (also done per scrape)."""
        if self.resolver is None:
            return
        stats = self.resolver.stats
        now = (stats.hits, stats.negative_hits, stats.misses)
        with self._dns_lock:
            before, self._dns_seen = self._dns_seen, now
        for counter, new, old in zip(
            (self.dns_hits, self.dns_negative_hits, self.dns_misses), now, before, strict=True
        ):
            if new > old:
                counter.inc(new - old)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format the HTTP ``Accept`` header asks for (Prometheus text
        0.0.4 by default, OpenMetrics on request) and its content type. Blocking (the queue
        depth and multiprocess files are read): call it from a thread when on the loop."""
        from prometheus_client.exposition import choose_encoder

        self.sync_dns()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.serving), content_type

    def _child(self, check: str, result: str) -> Any:
        key = (check, result)
        child = self._children.get(key)
        if child is None:
            if check == "d":
                child = self.messages.labels(result)
            else:
                child = self.check_results.labels(check, result)
            if len(self._children) < 10_000:
                self._children[key] = child
        return child


class _ScrapeCollector:
    """Values read when scraped: the queue depth."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        callback = self.metrics.queue_depth
        if callback is None:
            return []
        try:
            depth = float(callback())
        except Exception:
            log.exception("metrics: the queue depth callback failed")
            return []
        return [GaugeMetricFamily("mailward_queue_depth", "Messages in the delivery queue", depth)]

    def describe(self) -> Iterable[Any]:
        return []


# -- the /metrics endpoint -----------------------------------------------------------------------


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` to (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{listen!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


async def start_server(metrics: Metrics, listen: str) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``listen`` (web.listen) in the running loop; close the returned
    server to stop. Anything else gets 404 (405 for other methods)."""
    host, port = split_listen(listen)
    scrapes = asyncio.Semaphore(MAX_CONCURRENT_SCRAPES)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer(metrics, scrapes, reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("metrics endpoint: request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    return await asyncio.start_server(
        handle, host, port, limit=MAX_REQUEST_HEAD, reuse_address=True
    )


async def _answer(
    metrics: Metrics,
    scrapes: asyncio.Semaphore,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        await _reply(writer, 431, "Request Header Fields Too Large")
        return
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        await _reply(writer, 400, "Bad Request")
        return
    method, target = parts[0], parts[1]
    accept = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, field = line.partition(b":")
        if name.strip().lower() == b"accept":
            accept = field.strip().decode("latin-1")
    if target.split("?", 1)[0] != "/metrics":
        await _reply(writer, 404, "Not Found", b"mailward: metrics are at /metrics\n")
        return
    if method not in ("GET", "HEAD"):
        await _reply(writer, 405, "Method Not Allowed", extra="Allow: GET, HEAD\r\n")
        return
    async with scrapes:
        body, content_type = await asyncio.to_thread(metrics.render, accept)
    await _reply(writer, 200, "OK", body, content_type, head_only=method == "HEAD")


async def _reply(
    writer: asyncio.StreamWriter,
    status: int,
    reason: str,
    body: bytes = b"",
    content_type: str = "text/plain; charset=utf-8",
    *,
    extra: str = "",
    head_only: bool = False,
) -> None:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + (b"" if head_only else body))
    await writer.drain()
