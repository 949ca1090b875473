"""`mailward serve`: start the listeners and the delivery runner; stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from mailward.config import Config
from mailward.dns import make_resolver
from mailward.hub import Hub
from mailward.smtp.accounts import StoreAccounts
from mailward.smtp.inbound import InboundHandler
from mailward.smtp.server import ConnectionLimits, LimitedSMTP, drain, listen
from mailward.smtp.submission import SubmissionHandler, SubmissionSMTP
from mailward.smtp.throttle import AuthThrottle
from mailward.tlsconfig import ensure_self_signed, server_context

log = logging.getLogger("mailward")


async def serve(config: Config) -> None:
    from mailward.store import Store

    data_dir = Path(config.server.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    resolver = make_resolver(
        config.dns.zone_file, config.dns.nameservers, config.dns.timeout,
        config.dns.cache_size, config.dns.negative_ttl,
    )
    store = await asyncio.to_thread(Store.from_config, config.store, data_dir=data_dir)
    recorder = store.writer()
    hub = Hub(config, resolver, recorder=recorder)
    if config.smtp.tls_cert:
        cert, key = Path(config.smtp.tls_cert), Path(config.smtp.tls_key)
    else:
        cert, key = ensure_self_signed(data_dir / "tls", config.hostname)
    tls = server_context(cert, key)
    smtp = config.smtp
    common = {
        "hostname": config.hostname, "data_size_limit": smtp.max_message_size,
        "enable_SMTPUTF8": True, "decode_data": False, "timeout": smtp.command_timeout,
        "ident": "mailward ESMTP", "recorder": recorder,
    }
    inbound_limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_ip)
    inbound = InboundHandler(hub)
    sub_limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_ip)
    submission = SubmissionHandler(
        StoreAccounts(store, config.submission.shared_addresses), hub,
        AuthThrottle(config.submission.max_auth_failures, config.submission.auth_window),
        smtp.max_recipients, record_auth=recorder.record_auth,
    )

    def inbound_factory() -> LimitedSMTP:
        return LimitedSMTP(inbound, limits=inbound_limits, tls_context=tls, **common)

    def submission_factory() -> SubmissionSMTP:
        # RFC 6409/8314: STARTTLS offered, AUTH only after it, mail only after AUTH
        return SubmissionSMTP(submission, limits=sub_limits, tls_context=tls,
                              auth_require_tls=True, **common)

    def submission_tls_factory() -> SubmissionSMTP:
        return SubmissionSMTP(submission, limits=sub_limits, auth_require_tls=False, **common)

    hub.start()
    servers = [await listen(smtp.inbound_listen, inbound_factory)]
    if smtp.submission_listen:
        servers.append(await listen(smtp.submission_listen, submission_factory))
    if smtp.submission_tls_listen:
        servers.append(await listen(smtp.submission_tls_listen, submission_tls_factory, tls))
    pid_file = data_dir / "mailward.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, hub.wake)
    log.info(
        "listening: inbound %s, submission %s (STARTTLS), %s (TLS); data in %s; store %s",
        smtp.inbound_listen, smtp.submission_listen or "-", smtp.submission_tls_listen or "-",
        data_dir, store.url,
    )
    await stop.wait()
    log.info("stopping: no new connections; finishing sessions in progress")
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
    await drain([inbound_limits, sub_limits], smtp.shutdown_grace)
    await hub.stop()
    await asyncio.to_thread(recorder.close)
    await asyncio.to_thread(store.close)
    pid_file.unlink(missing_ok=True)
    log.info("stopped")
