"""A storage written by the user: it plugs in, passes the suite, and may fail without harm."""

from __future__ import annotations

from pathlib import Path

from pug_grpc import MemoryStorage, Record, Storage, StorageError
from pug_grpc._ingest.storage import GuardedStorage
from pug_grpc.testing.storage_conformance import StorageConformance
from tests.support.reliability import Reports, client, pug_server, seq_of


class ListStorage(Storage):
    """The smallest storage: a list, no budget; raises on purpose after ``fail_after`` appends."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.waiting: list[Record] = []
        self.leased: dict[int, Record] = {}
        self.appends = 0
        self.fail_after = fail_after

    def append(self, record: Record) -> list[Record]:
        self.appends += 1
        if self.fail_after is not None and self.appends > self.fail_after:
            raise OSError("the queue service went away")
        self.waiting.append(record)
        return []

    def lease(self) -> Record | None:
        if not self.waiting:
            return None
        record = self.waiting.pop(0)
        self.leased[record.key] = record
        return record

    def ack(self, record: Record) -> None:
        self.leased.pop(record.key, None)

    def release(self, record: Record) -> None:
        self.leased.pop(record.key, None)
        self.waiting.insert(0, record)

    def size_bytes(self) -> int:
        return sum(len(r.payload) for r in [*self.waiting, *self.leased.values()])

    def queued_items(self) -> int:
        return sum(r.count for r in self.waiting)

    def drain(self) -> list[Record]:
        out, self.waiting = self.waiting, []
        return out


class TestGuardedMemoryStorage(StorageConformance):
    """The guard put around users' storages changes nothing for one that works."""

    def make_storage(self, directory: Path, *, max_bytes: int) -> Storage:
        return GuardedStorage(MemoryStorage(max_bytes=max_bytes), max_bytes=max_bytes)


def test_a_users_storage_carries_the_queue() -> None:
    storage = ListStorage()
    with pug_server() as server:
        pug = client(server, storage=storage)
        for seq in range(300):
            pug.track("user-1", "user.storage", {"seq": seq})
        assert pug.flush(10).accepted == 300
        pug.close()
        assert storage.appends >= 1
        assert sorted(seq_of(e) for e in server.events) == list(range(300))


def test_a_users_storage_that_raises_is_reported_once_and_memory_takes_over() -> None:
    reports = Reports()
    with pug_server() as server:
        server.faults.outage()
        pug = client(server, storage=ListStorage(fail_after=2), on_error=reports)
        for seq in range(3000):
            pug.track(f"user-{seq % 3}", "user.storage", {"seq": seq})
        server.faults.end_outage()
        result = pug.flush(20)
        pug.close()
        assert result.accepted == 3000
        assert sorted(seq_of(e) for e in server.events) == list(range(3000))
    (problem,) = reports.of("STORAGE_FAILED")
    assert isinstance(problem.error, StorageError)
    assert "the queue service went away" in problem.error.message
    assert "memory" in problem.error.message


class LosingStorage(ListStorage):
    """Loses the first record it is given, as a storage does whose file turned out corrupt."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[Record] = []
        self.lost_items = 0

    def append(self, record: Record) -> list[Record]:
        if not self.lost_items:
            self.lost.append(record)
            self.lost_items = record.count
            return []
        return super().append(record)

    def take_lost(self) -> list[Record]:
        out, self.lost = self.lost, []
        return out


def test_records_a_storage_lost_are_dead_lettered_and_the_accounts_add_up() -> None:
    reports = Reports()
    storage = LosingStorage()
    with pug_server() as server:
        pug = client(server, storage=storage, on_error=reports)
        for seq in range(100):
            pug.track("user-1", "user.storage", {"seq": seq})
        result = pug.flush(20)
        pug.close()
        stats = pug.stats()
        delivered = len(server.events)
    lost = storage.lost_items
    assert result.completed
    assert lost >= 1
    assert (stats.dead_lettered, stats.accepted, delivered) == (lost, 100 - lost, 100 - lost)
    assert (result.dead_lettered, result.accepted) == (lost, 100 - lost)
    (problem,) = reports.of("STORAGE_FAILED")
    assert f"{lost} stored item(s) could not be read back" in problem.error.message
