"""The spool: committed means durable; half-written files vanish on recovery."""

from __future__ import annotations

from pathlib import Path

from mailward.spool import Recipient, Spool, SpoolEntry, new_queue_id


def entry(qid: str) -> SpoolEntry:
    return SpoolEntry(qid, "a@example.com", [Recipient("b@ourcorp.example")], 1.0)


def test_enqueue_read_update_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    qid = new_queue_id()
    spool.enqueue(b"message", entry(qid))
    assert spool.queued() == [qid]
    assert spool.message(qid) == b"message"
    e = spool.entry(qid)
    e.recipients[0].status = "delivered"
    spool.update(e)
    assert Spool(tmp_path).entry(qid).recipients[0].status == "delivered"
    spool.remove(qid)
    assert spool.queued() == []


def test_recovery_discards_uncommitted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.enqueue(b"kept", entry("KEPT"))
    (spool.tmp / "HALF.msg").write_bytes(b"half")
    (spool.queue / "ORPHAN.state").write_bytes(b"{}")
    assert Spool(tmp_path).recover() == ["KEPT"]
    assert not (spool.queue / "ORPHAN.state").exists()
    assert list(spool.tmp.iterdir()) == []


def test_queue_ids_are_unique_and_sortable() -> None:
    ids = [new_queue_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and i.isalnum() for i in ids)
