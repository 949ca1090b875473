"""The hub without listeners: what `Hub.submit` queues."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session

from mailward.config import from_dict
from mailward.dns import ZoneResolver
from mailward.hub import Hub
from mailward.model import Message


def test_submit_with_no_envelope_sender_and_no_from_domain(tmp_path: Path) -> None:
    """An envelope without MAIL FROM (aiosmtpd's None) and a message with no single From domain
    (two From addresses) leave no domain to sign for: the message is queued unsigned with the
    null sender instead of failing on the missing envelope sender."""
    config = from_dict({"server": {"data_dir": str(tmp_path)}})
    queued: list[str] = []
    hub = Hub(config, ZoneResolver({}), notify=queued.append)
    message = Message(
        b"From: alice@ourcorp.example, bob@ourcorp.example\r\nSubject: hi\r\n\r\nbody\r\n"
    )
    assert message.parsed.from_domain is None

    async def submit() -> str:
        envelope = SmtpEnvelope()
        envelope.rcpt_tos.append("carol@elsewhere.example")
        return await hub.submit("alice", Session(asyncio.get_running_loop()), envelope, message)

    qid = asyncio.run(submit())
    assert queued == [qid]
    entry, raw = hub.spool.load(qid)
    assert entry.mail_from == ""
    assert [r.address for r in entry.recipients] == ["carol@elsewhere.example"]
    assert not raw.startswith(b"DKIM-Signature")
