"""`mailward serve`: start the listeners and the delivery runner; stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from mailward.config import Config
from mailward.dns import make_resolver
from mailward.hub import Hub
from mailward.smtp.inbound import InboundHandler
from mailward.smtp.server import ConnectionLimits, LimitedSMTP, listen
from mailward.tlsconfig import ensure_self_signed, server_context

log = logging.getLogger("mailward")


async def serve(config: Config, ready: asyncio.Event | None = None) -> None:
    data_dir = Path(config.server.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    resolver = make_resolver(
        config.dns.zone_file, config.dns.nameservers, config.dns.timeout,
        config.dns.cache_size, config.dns.negative_ttl,
    )
    hub = Hub(config, resolver)
    if config.smtp.tls_cert:
        cert, key = Path(config.smtp.tls_cert), Path(config.smtp.tls_key)
    else:
        cert, key = ensure_self_signed(data_dir / "tls", config.hostname)
    tls = server_context(cert, key)
    smtp = config.smtp
    inbound_limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_ip)
    inbound = InboundHandler(hub)

    def inbound_factory() -> LimitedSMTP:
        return LimitedSMTP(
            inbound, limits=inbound_limits, hostname=config.hostname,
            data_size_limit=smtp.max_message_size, enable_SMTPUTF8=True, decode_data=False,
            tls_context=tls, timeout=smtp.command_timeout, ident="mailward ESMTP",
        )

    hub.start()
    servers = [await listen(smtp.inbound_listen, inbound_factory)]
    log.info("inbound SMTP listening on %s", smtp.inbound_listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    print(f"mailward: listening on {smtp.inbound_listen} (inbound); data in {data_dir}",
          flush=True)
    await stop.wait()
    log.info("stopping: no new connections; finishing sessions in progress")
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
    await hub.stop()
    log.info("stopped")
