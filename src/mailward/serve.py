"""`mailward serve`: listeners, worker processes and the delivery runner; clean stop on SIGTERM.

With ``server.workers = 1`` one process does everything. With more, the master binds the
listening sockets and forks that many workers; each worker accepts connections on the shared
sockets and runs the whole receiving path (SMTP, checks, spool or local delivery, store events)
on its own core, and tells the master through a pipe which messages it queued; the master alone
runs the delivery queue, so a message is never delivered by two processes at once. The master
passes each worker's counted logins to the others (one pipe to each), so the AUTH throttle
counts the whole hub's failures in every worker. Workers die with the master
(``PR_SET_PDEATHSIG``), so ``kill -9`` of the master leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailward import identity_refresh
from mailward.checks.identity import IdentityCheck
from mailward.config import Config
from mailward.dns import make_resolver
from mailward.history import StoreHistory
from mailward.hub import Hub
from mailward.smtp.accounts import StoreAccounts
from mailward.smtp.inbound import InboundHandler
from mailward.smtp.server import ConnectionLimits, LimitedSMTP, drain, split_hostport
from mailward.smtp.submission import SubmissionHandler, SubmissionSMTP
from mailward.smtp.throttle import AuthThrottle
from mailward.spool import Spool
from mailward.throttle_link import LoginBroadcast, LoginPipes
from mailward.tlsconfig import ensure_self_signed, server_context
from mailward.worker_link import MasterLink, WorkerLink

log = logging.getLogger("mailward")
PR_SET_PDEATHSIG = 1


@dataclass
class Listeners:
    """The bound listening sockets, by role."""

    inbound: socket.socket
    submission: socket.socket | None = None
    submission_tls: socket.socket | None = None
    all: list[socket.socket] = field(default_factory=list)


def bind(config: Config) -> Listeners:
    def one(address: str) -> socket.socket:
        host, port = split_hostport(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    smtp = config.smtp
    listeners = Listeners(one(smtp.inbound_listen))
    if smtp.submission_listen:
        listeners.submission = one(smtp.submission_listen)
    if smtp.submission_tls_listen:
        listeners.submission_tls = one(smtp.submission_tls_listen)
    listeners.all = [s for s in (listeners.inbound, listeners.submission,
                                 listeners.submission_tls) if s is not None]
    return listeners


def tls_context(config: Config) -> ssl.SSLContext:
    data_dir = Path(config.server.data_dir)
    if config.smtp.tls_cert:
        return server_context(Path(config.smtp.tls_cert), Path(config.smtp.tls_key))
    return server_context(*ensure_self_signed(data_dir / "tls", config.hostname))


def run(config: Config) -> None:
    """Bind, fork the workers if configured, and serve until SIGTERM/SIGINT."""
    data_dir = Path(config.server.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls = tls_context(config)  # makes the self-signed certificate once, before any fork
    from mailward import banner

    banner.check_texts(config)  # a site's broken banner template fails now, not on a message
    listeners = bind(config)
    # create or migrate the store schema once, before several processes open it
    from mailward.store import Store

    Store.from_config(config.store, data_dir=data_dir).close()
    identity_refresh.first_import(config)  # the directory's people, before the first message
    workers = config.server.workers or os.cpu_count() or 1
    if workers == 1:
        asyncio.run(_serve(config, listeners, tls, deliver=True))
        return
    from mailward.metrics import prepare_multiprocess

    prepare_multiprocess(data_dir / "metrics")  # before any fork and any metric exists
    # half-written spool files are discarded now, while no worker can be writing one
    Spool(data_dir / "spool").recover()
    read_end, write_end = os.pipe()
    login_pipes = LoginPipes(workers)  # master -> each worker: the others' counted logins
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                os.close(read_end)
                link = WorkerLink(write_end, index, login_pipes.worker_end(index))
                asyncio.run(_serve(config, listeners, tls, deliver=False, link=link,
                                   name=f"worker {index}"))
                code = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)
        children.append(pid)
    os.close(write_end)
    logins = login_pipes.master_end()
    for sock in listeners.all:
        sock.close()
    asyncio.run(_master(config, children, read_end, logins))


async def _master(
    config: Config, children: list[int], read_end: int, logins: LoginBroadcast
) -> None:
    """Runs the delivery queue for messages the workers queued, the alert detector for the
    events they relay, and the metrics endpoint; passes each worker's counted logins to the
    others; forwards signals to the workers."""
    from mailward.metrics import Metrics

    observers = await _Observers.open(config)
    hub = Hub(config, observers.resolver, recorder=observers.recorder)
    metrics = Metrics(resolver=observers.resolver, queue_depth=lambda: len(hub.spool.queued()),
                      multiprocess_dir=Path(config.server.data_dir) / "metrics")
    monitor = observers.attach(hub, metrics)
    await observers.learn_rates(monitor)
    web = await observers.serve_metrics(metrics)
    observers.start_retention()
    observers.start_identities(None, imports=True)  # the master imports; workers reload
    hub.start(recover=False)  # the workers are already writing to the spool
    loop = asyncio.get_running_loop()
    link = MasterLink(hub.runner.enqueued, monitor, on_login=logins.send)

    def on_readable() -> None:
        chunk = os.read(read_end, 65536)
        if not chunk:
            loop.remove_reader(read_end)
            return
        link.feed(chunk)

    def forward(sig: int) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def reopen() -> None:
        observers.events.reopen()
        forward(signal.SIGHUP)

    loop.add_reader(read_end, on_readable)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, hub.wake)
    loop.add_signal_handler(signal.SIGHUP, reopen)
    pid_file = Path(config.server.data_dir) / "mailward.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    log.info("master: %d workers (%s), delivery queue here", len(children),
             ", ".join(map(str, children)))
    exited = asyncio.create_task(_wait_children(children))
    await asyncio.wait([asyncio.create_task(stop.wait()), exited],
                       return_when=asyncio.FIRST_COMPLETED)
    forward(signal.SIGTERM)
    await exited
    loop.remove_reader(read_end)
    logins.close()
    await _step("delivery queue", hub.stop())
    await observers.close(web)
    pid_file.unlink(missing_ok=True)
    log.info("stopped")


async def _wait_children(children: list[int]) -> None:
    remaining = set(children)
    while remaining:
        for pid in list(remaining):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                remaining.discard(pid)
        await asyncio.sleep(0.1)


class _Observers:
    """What watches the hub: the store writer, the event export, metrics and alerts."""

    def __init__(self, config: Config, resolver: Any, store: Any) -> None:
        from mailward.eventlog import EventSink, EventTee

        self.config = config
        self.resolver = resolver
        self.store = store
        self.writer = store.writer()
        self.events = EventSink(config.events, hostname=config.hostname)
        self.recorder = EventTee(self.writer, self.events) if self.events.enabled else self.writer
        self.history = StoreHistory(store, config.identity.first_contact_hours)
        self._retention: asyncio.Task[None] | None = None
        self._identities: identity_refresh.IdentityRefresher | None = None

    @classmethod
    async def open(cls, config: Config) -> _Observers:
        from mailward.store import Store

        resolver = make_resolver(config.dns.zone_file, config.dns.nameservers,
                                 config.dns.timeout, config.dns.cache_size,
                                 config.dns.negative_ttl)
        store = await asyncio.to_thread(Store.from_config, config.store,
                                        data_dir=Path(config.server.data_dir),
                                        instance=config.hostname)
        return cls(config, resolver, store)

    def attach(self, hub: Hub, metrics: Any) -> Any:
        """Give the hub its metrics and an alert monitor mailing the admins through it."""
        from mailward.alerts import AlertMonitor

        monitor = AlertMonitor(self.config, self.recorder, send=hub.queue_notification)
        hub.metrics = metrics
        hub.monitor = monitor
        return monitor

    async def learn_rates(self, monitor: Any) -> None:
        """Teach the compromise detector the accounts' normal sending rates from the central
        log's last week, so a restart does not forget them."""
        from datetime import UTC, datetime, timedelta

        from mailward.alerts import BASELINE_HOURS

        now = datetime.now(UTC)
        try:
            begins, submissions = await asyncio.to_thread(
                self.store.submission_history, now - timedelta(hours=BASELINE_HOURS))
        except Exception:
            log.exception("accounts' sending rates could not be read from the log; "
                          "learning them anew")
            return
        if begins is None:
            return
        learnt = monitor.detector.learn(begins.timestamp(),
                                        ((user, at.timestamp()) for user, at in submissions))
        log.info("alerts: normal sending rates of %d account(s) learnt from %d message(s) "
                 "in the log", learnt, len(submissions))

    async def serve_metrics(self, metrics: Any) -> asyncio.Server | None:
        from mailward.metrics import start_server

        if not self.config.web.listen:
            return None
        web = await start_server(metrics, self.config.web.listen)
        log.info("metrics on http://%s/metrics", self.config.web.listen)
        return web

    def start_retention(self) -> None:
        """Purge log rows older than store.retention_days a minute after start, then every
        6 hours; quarantined files whose rows go are removed too. One process does this."""
        self._retention = asyncio.create_task(self._purge_forever(), name="retention")

    async def _purge_forever(self) -> None:
        await asyncio.sleep(60)
        while True:
            try:
                result = await asyncio.to_thread(self.store.purge)
                for path in result.raw_paths:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                if result.total:
                    log.info("retention: purged %d rows older than %d days (%s)", result.total,
                             self.store.retention_days, result.deleted)
            except Exception:
                log.exception("retention purge failed; retrying later")
            await asyncio.sleep(6 * 3600)

    def start_identities(self, hub: Hub | None, *, imports: bool) -> None:
        """Keep the protected identities of ``hub``'s identity check current (None: this
        process receives no mail); with ``imports`` also import from the directory (one
        process does)."""
        checks = hub.pipeline.checks if hub is not None else []
        check = next((c for c in checks if isinstance(c, IdentityCheck)), None)
        self._identities = identity_refresh.IdentityRefresher(self.config, check,
                                                              imports=imports)
        self._identities.start()

    async def close(self, web: asyncio.Server | None) -> None:
        """Stop the background jobs, write what the log still has queued, close the store.
        Each step is bounded and a slow one is named in the log, so a stuck step (a database
        that does not answer) cannot keep the process from exiting."""
        if self._identities is not None:
            await _step("identity refresh", self._identities.close())
        if self._retention is not None:
            self._retention.cancel()
            await _step("retention job",
                        asyncio.gather(self._retention, return_exceptions=True))
        if web is not None:
            web.close()
            await _step("metrics endpoint", web.wait_closed())
        pending = self.writer.pending()
        # the timeout goes to the writer itself: a thread left waiting would hold up the exit
        await _step(f"store writer ({pending} queued)",
                    asyncio.to_thread(self.writer.close, STORE_CLOSE_TIMEOUT),
                    STORE_CLOSE_TIMEOUT + 1)
        await _step("event export", asyncio.to_thread(self.events.close))
        await _step("store", asyncio.to_thread(self.store.close))


STEP_TIMEOUT = 5.0  # seconds a shutdown step may take before the next one starts
STORE_CLOSE_TIMEOUT = 15.0  # the writer may wait for a busy database a little longer


async def _step(what: str, awaitable: Any, timeout: float = STEP_TIMEOUT) -> None:
    """One shutdown step: awaited at most ``timeout`` seconds; slowness and failure are
    logged, never raised (the process must still exit)."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        log.error("stopping: %s did not finish within %.0fs; going on without it", what,
                  timeout)
        return
    except Exception:
        log.exception("stopping: %s failed", what)
        return
    took = time.monotonic() - started
    if took > 1.0:
        log.warning("stopping: %s took %.1fs", what, took)


async def _serve(
    config: Config, listeners: Listeners, tls: ssl.SSLContext, *, deliver: bool,
    link: WorkerLink | None = None, name: str = "hub",
) -> None:
    """One process's listeners. ``deliver``: also run the delivery queue, metrics endpoint and
    alert detector here (single process); otherwise relay to the master through ``link``."""
    from mailward.metrics import Metrics

    data_dir = Path(config.server.data_dir)
    observers = await _Observers.open(config)
    recorder = observers.recorder
    hub = Hub(config, observers.resolver, recorder=recorder,
              notify=link.queued if link is not None else None, history=observers.history)
    web = None
    if deliver:
        metrics = Metrics(resolver=observers.resolver,
                          queue_depth=lambda: len(hub.spool.queued()))
        monitor = observers.attach(hub, metrics)
        await observers.learn_rates(monitor)
        web = await observers.serve_metrics(metrics)
        observers.start_retention()
    observers.start_identities(hub, imports=deliver)
    if not deliver:
        hub.metrics = Metrics(resolver=observers.resolver)
        hub.monitor = monitor = link
    smtp = config.smtp
    common: dict[str, Any] = {
        "hostname": config.hostname, "data_size_limit": smtp.max_message_size,
        "enable_SMTPUTF8": True, "decode_data": False, "timeout": smtp.command_timeout,
        "ident": "mailward ESMTP", "recorder": recorder, "data_timeout": smtp.data_timeout,
    }
    inbound_limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_ip)
    sub_limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_ip)
    inbound = InboundHandler(hub)
    throttle = AuthThrottle(config.submission.max_auth_failures, config.submission.auth_window)
    # a worker counts the other workers' failed logins too, and tells them about its own
    logins = link.follow_logins(throttle) if link is not None else None
    submission = SubmissionHandler(
        StoreAccounts(observers.store, config.submission.shared_addresses), hub, throttle,
        smtp.max_recipients, record_auth=recorder.record_auth, monitor=monitor,
        share_login=link.login_counted if link is not None else None,
    )

    def inbound_factory() -> LimitedSMTP:
        return LimitedSMTP(inbound, limits=inbound_limits, tls_context=tls, **common)

    def submission_factory() -> SubmissionSMTP:
        # RFC 6409/8314: STARTTLS offered, AUTH only after it, mail only after AUTH
        return SubmissionSMTP(submission, limits=sub_limits, tls_context=tls,
                              auth_require_tls=True, **common)

    def submission_tls_factory() -> SubmissionSMTP:
        return SubmissionSMTP(submission, limits=sub_limits, auth_require_tls=False, **common)

    loop = asyncio.get_running_loop()
    if deliver:
        hub.start()
    servers = [await loop.create_server(inbound_factory, sock=listeners.inbound)]
    if listeners.submission is not None:
        servers.append(await loop.create_server(submission_factory, sock=listeners.submission))
    if listeners.submission_tls is not None:
        servers.append(await loop.create_server(submission_tls_factory, ssl=tls,
                                                sock=listeners.submission_tls))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, observers.events.reopen)
    pid_file = data_dir / "mailward.pid"
    if deliver:
        loop.add_signal_handler(signal.SIGUSR1, hub.wake)
        pid_file.write_text(f"{os.getpid()}\n")
    log.info("%s listening: inbound %s, submission %s (STARTTLS), %s (TLS); data in %s; store %s",
             name, smtp.inbound_listen, smtp.submission_listen or "-",
             smtp.submission_tls_listen or "-", data_dir, observers.store.url)
    await stop.wait()
    log.info("%s stopping: no new connections; finishing sessions in progress", name)
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
    await drain([inbound_limits, sub_limits], smtp.shutdown_grace)
    if logins is not None:
        logins.close()
    if deliver:
        await _step("delivery queue", hub.stop())
        pid_file.unlink(missing_ok=True)
    await observers.close(web)
    log.info("%s stopped", name)
