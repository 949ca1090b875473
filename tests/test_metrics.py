"""Prometheus metrics: what observe_message/observe_delivery count, DNS cache counters from the
resolver's stats, the queue depth callback, the /metrics endpoint inside a running loop, and
prometheus-client's multiprocess mode across forked workers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailward.config import ConfigError, WebConfig
from mailward.dns import CacheStats
from mailward.metrics import Metrics, prepare_multiprocess, split_listen, start_server
from mailward.model import Finding, Result


class FakeResolver:
    def __init__(self) -> None:
        self.stats = CacheStats()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: bytes, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


FINDINGS = [
    Finding("spf", "SPF_FAIL", Result.FAIL),
    Finding("dkim", "DKIM_PASS", Result.PASS),
    Finding("dkim", "DKIM_PASS", Result.PASS),
    Finding("dmarc", "DMARC_FAIL_REJECT", Result.FAIL),
]


def test_messages_and_check_results() -> None:
    metrics = Metrics()
    metrics.observe_message("reject", FINDINGS, seconds=0.004)
    metrics.observe_message("accept", FINDINGS[1:3], seconds=0.0002)
    metrics.observe_message("submitted")
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(text, "mailward_messages_total", disposition="reject") == 1
    assert value(text, "mailward_messages_total", disposition="accept") == 1
    assert value(text, "mailward_messages_total", disposition="submitted") == 1
    assert value(text, "mailward_check_results_total", check="dkim", result="pass") == 4
    assert value(text, "mailward_check_results_total", check="spf", result="fail") == 1
    assert value(text, "mailward_evaluation_seconds_count") == 2
    assert value(text, "mailward_evaluation_seconds_bucket", le="0.001") == 1
    assert value(text, "mailward_evaluation_seconds_bucket", le="0.005") == 2


def test_deliveries() -> None:
    metrics = Metrics()
    metrics.observe_delivery("delivered", 0.3)
    metrics.observe_delivery("delivered", 42.0)
    metrics.observe_delivery("deferred", 1.0)
    metrics.observe_delivery("failed")
    text, _ = metrics.render()
    assert value(text, "mailward_deliveries_total", status="delivered") == 2
    assert value(text, "mailward_deliveries_total", status="failed") == 1
    assert value(text, "mailward_delivery_seconds_count", status="delivered") == 2
    assert value(text, "mailward_delivery_seconds_bucket", status="delivered", le="0.5") == 1
    assert value(text, "mailward_delivery_seconds_bucket", status="delivered", le="60.0") == 2
    assert value(text, "mailward_delivery_seconds_sum", status="delivered") == pytest.approx(42.3)


def test_dns_cache_counters_follow_the_resolver() -> None:
    resolver = FakeResolver()
    metrics = Metrics(resolver=resolver)
    resolver.stats.hits, resolver.stats.negative_hits, resolver.stats.misses = 30, 4, 10
    text, _ = metrics.render()
    assert value(text, "mailward_dns_cache_hits_total") == 30
    assert value(text, "mailward_dns_cache_negative_hits_total") == 4
    assert value(text, "mailward_dns_cache_misses_total") == 10
    resolver.stats.hits += 5
    text, _ = metrics.render()  # counted once, not again
    assert value(text, "mailward_dns_cache_hits_total") == 35
    assert value(text, "mailward_dns_cache_misses_total") == 10


def test_queue_depth_is_read_when_scraped() -> None:
    depth = [3]
    metrics = Metrics(queue_depth=lambda: depth[0])
    assert value(metrics.render()[0], "mailward_queue_depth") == 3
    depth[0] = 11
    assert value(metrics.render()[0], "mailward_queue_depth") == 11
    assert ("mailward_queue_depth", ()) not in samples(Metrics().render()[0])


def test_a_failing_queue_callback_leaves_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> int:
        raise OSError("spool gone")

    metrics = Metrics(queue_depth=broken)
    metrics.observe_message("accept")
    text, _ = metrics.render()
    assert value(text, "mailward_messages_total", disposition="accept") == 1
    assert "queue depth callback failed" in caplog.text


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_message("accept")
    assert ("mailward_messages_total", (("disposition", "accept"),)) not in samples(
        second.render()[0]
    )


# -- the endpoint ---------------------------------------------------------------------------------


async def request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()  # (a client that gave up half-way must not hold the server)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def test_endpoint_inside_the_loop() -> None:
    metrics = Metrics(queue_depth=lambda: 2)
    metrics.observe_message("tag", FINDINGS[:1])

    async def main() -> None:
        server = await start_server(metrics, "127.0.0.1:0")
        port = server.sockets[0].getsockname()[1]
        try:
            ticks = 0

            async def ticker() -> None:  # the loop stays free while scrapes are answered
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            ok = await request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = ok.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"Content-Type: text/plain; version=0.0.4" in head
            assert f"Content-Length: {len(body)}".encode() in head
            assert value(body, "mailward_messages_total", disposition="tag") == 1
            assert value(body, "mailward_queue_depth") == 2
            task.cancel()
            assert ticks > 0

            openmetrics = await request(
                port, b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n"
            )
            head, _, body = openmetrics.partition(b"\r\n\r\n")
            assert b"Content-Type: application/openmetrics-text" in head
            assert body.endswith(b"# EOF\n")

            head_only = await request(port, b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n")
            assert head_only.startswith(b"HTTP/1.1 200 OK") and head_only.endswith(b"\r\n\r\n")
            assert (await request(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(
                b"HTTP/1.1 404 Not Found"
            )
            post = await request(port, b"POST /metrics HTTP/1.1\r\n\r\n")
            assert post.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in post
            assert (await request(port, b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400")
            huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
            assert (await request(port, huge)).startswith(b"HTTP/1.1 431")
            assert await request(port, b"GET /metr") == b""  # client gave up: just closed
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8025", ("127.0.0.1", 8025)),
        ("[::1]:9", ("::1", 9)),
        (":8025", ("0.0.0.0", 8025)),
    ],
)
def test_split_listen(listen: str, expected: tuple[str, int]) -> None:
    assert split_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8025", "host:", "host:port", "a b:80"])
def test_web_listen_is_checked(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.listen"):
        WebConfig(listen=listen)


# -- several worker processes ---------------------------------------------------------------------


def test_prepare_multiprocess_refuses_when_too_late(tmp_path: Path) -> None:
    Metrics()  # prometheus_client is imported by now, in single-process mode
    with pytest.raises(RuntimeError, match="imported before"):
        prepare_multiprocess(tmp_path)


MULTIPROCESS = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from mailward.metrics import Metrics, prepare_multiprocess

    directory = Path(sys.argv[1])
    (directory / "stale_123.db").write_bytes(b"old run")
    prepare_multiprocess(directory)            # master, before forking
    assert not (directory / "stale_123.db").exists()
    children = []
    for worker in range(2):
        pid = os.fork()
        if pid == 0:
            metrics = Metrics()
            for _ in range(worker + 1):
                metrics.observe_message("accept", [])
            metrics.observe_delivery("delivered", 1.0)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    master = Metrics(queue_depth=lambda: 5, multiprocess_dir=directory)
    master.observe_delivery("delivered", 2.0)  # the master delivers too
    sys.stdout.write(master.render()[0].decode())
    """
)


def test_workers_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", MULTIPROCESS, str(tmp_path)],
        capture_output=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout
    assert value(text, "mailward_messages_total", disposition="accept") == 3
    assert value(text, "mailward_deliveries_total", status="delivered") == 3
    assert value(text, "mailward_delivery_seconds_count", status="delivered") == 3
    assert value(text, "mailward_queue_depth") == 5


def test_a_silent_client_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mailward.metrics.REQUEST_TIMEOUT", 0.2)

    async def main() -> None:
        server = await start_server(Metrics(), "127.0.0.1:0")
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\n")  # and nothing more
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # closed by the server
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
