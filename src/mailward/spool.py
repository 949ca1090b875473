"""The durable queue: a message is on disk (fsynced) before the hub answers 250.

Layout under the spool directory::

    tmp/              files being written; anything here after a crash is discarded
    queue/QID.msg     one line of JSON (envelope, state at arrival), then the message bytes
    queue/QID.state   the current state, once it changed (retries); absent until then

A message is committed when ``QID.msg`` has been fsynced, renamed into ``queue/`` and the
directory fsynced: one file and two fsyncs per message. State changes write ``QID.state``
atomically (tmp, fsync, rename, fsync dir). Removal unlinks without a directory fsync: after a
crash a removed message may come back and be delivered again (at-least-once; local Maildir
delivery is idempotent by queue id, so it still lands once).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXZ"


def new_queue_id() -> str:
    """A sortable, unique queue id: time in milliseconds plus randomness, 16 characters."""
    n = time.time_ns() // 1_000_000
    chars = []
    for _ in range(9):
        n, r = divmod(n, len(_ALPHABET))
        chars.append(_ALPHABET[r])
    head = "".join(reversed(chars))
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(7))
    return head + tail


@dataclass(slots=True)
class Recipient:
    address: str
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_reply: str = ""


@dataclass(slots=True)
class SpoolEntry:
    """What the queue keeps about one message besides its bytes."""

    queue_id: str
    mail_from: str
    recipients: list[Recipient]
    received_at: float
    direction: str = "inbound"  # inbound | outbound
    next_attempt: float = 0.0
    attempts: int = 0
    disposition: str = "accept"
    bounce_allowed: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> list[Recipient]:
        return [r for r in self.recipients if r.status == "pending"]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SpoolEntry:
        values = json.loads(data)
        values["recipients"] = [Recipient(**r) for r in values["recipients"]]
        return cls(**values)


class SpoolError(OSError):
    """The spool could not store or read a message; the caller answers 451."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A directory-backed queue; every method is synchronous (run it in a thread from async)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.queue = self.root / "queue"
        for path in (self.root, self.tmp, self.queue):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def recover(self) -> list[str]:
        """After a restart: drop half-written files, return the committed queue ids."""
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
        for orphan in self.queue.glob("*.state"):
            if not orphan.with_suffix(".msg").exists():
                orphan.unlink(missing_ok=True)
        return self.queued()

    def enqueue(self, raw: bytes, entry: SpoolEntry) -> None:
        """Store the message durably; when this returns, it survives a crash."""
        qid = entry.queue_id
        try:
            tmp = self.tmp / f"{qid}.msg"
            _write_synced(tmp, entry.to_json() + b"\n" + raw)
            os.rename(tmp, self.queue / f"{qid}.msg")
            _fsync_dir(self.queue)
        except OSError as exc:
            raise SpoolError(exc.errno, f"cannot spool {qid}: {exc.strerror or exc}") from exc

    def update(self, entry: SpoolEntry) -> None:
        """Atomically replace the state of a queued message."""
        tmp = self.tmp / f"{entry.queue_id}.state"
        _write_synced(tmp, entry.to_json())
        os.rename(tmp, self.queue / f"{entry.queue_id}.state")
        _fsync_dir(self.queue)

    def load(self, qid: str) -> tuple[SpoolEntry, bytes]:
        """The current state and the message bytes of a queued message."""
        try:
            data = (self.queue / f"{qid}.msg").read_bytes()
            header, _, raw = data.partition(b"\n")
            state = self.queue / f"{qid}.state"
            with contextlib.suppress(FileNotFoundError):
                header = state.read_bytes()
            return SpoolEntry.from_json(header), raw
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SpoolError(0, f"cannot read queued message {qid}: {exc}") from exc

    def entry(self, qid: str) -> SpoolEntry:
        return self.load(qid)[0]

    def message(self, qid: str) -> bytes:
        return self.load(qid)[1]

    def remove(self, qid: str) -> None:
        """Forget a delivered message."""
        (self.queue / f"{qid}.msg").unlink(missing_ok=True)
        (self.queue / f"{qid}.state").unlink(missing_ok=True)

    def contains(self, qid: str) -> bool:
        return (self.queue / f"{qid}.msg").exists()

    def queued(self) -> list[str]:
        return sorted(p.stem for p in self.queue.glob("*.msg"))
