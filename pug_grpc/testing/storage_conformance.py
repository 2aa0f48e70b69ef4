"""Conformance tests for a :class:`pug_grpc.Storage` implementation, to run with pytest.

Subclass :class:`StorageConformance` in a test module and say how to build your storage::

    from pug_grpc.testing.storage_conformance import StorageConformance

    class TestMyStorage(StorageConformance):
        def make_storage(self, directory, *, max_bytes):
            return MyStorage(directory / "queue", max_bytes=max_bytes)

Every ``test_*`` method is inherited. ``directory`` is a fresh temporary directory per test,
the same one for every storage a test builds (a persistent storage is expected to find there
what a closed one left: the tests that check it run only when ``persistent`` is true).
Nothing here needs more than pytest's ``tmp_path`` fixture.
"""

from __future__ import annotations

import random
from pathlib import Path

from pug_grpc._ingest.batches import Record
from pug_grpc._ingest.storage import Storage, StorageError

__all__ = ["StorageConformance", "record"]


def record(n: int, *, size: int = 64, count: int = 1, window: int = 0) -> Record:
    """A distinct events record of ``size`` payload bytes (its first bytes say ``n``)."""
    head = f"#{n}:".encode()
    return Record("events", (head + b"x" * size)[:size], count, window)


def _same(a: Record, b: Record) -> bool:
    return (a.kind, a.payload, a.count, a.window) == (b.kind, b.payload, b.count, b.window)


class StorageConformance:
    """The contract of :class:`pug_grpc.Storage`, one behaviour per test (see the module doc)."""

    max_bytes = 1 << 20

    def make_storage(self, directory: Path, *, max_bytes: int) -> Storage:
        raise NotImplementedError("override make_storage(directory, *, max_bytes)")

    # -- helpers ------------------------------------------------------------------------------
    def _open(self, directory: Path, *, max_bytes: int | None = None) -> Storage:
        storage = self.make_storage(directory, max_bytes=max_bytes or self.max_bytes)
        self.problems: list[StorageError] = []
        storage.open(self.problems.append)
        storage.recover(0)
        return storage

    @staticmethod
    def _lease_all(storage: Storage) -> list[Record]:
        out = []
        while (leased := storage.lease()) is not None:
            out.append(leased)
        return out

    # -- the basics ---------------------------------------------------------------------------
    def test_empty_storage_leases_nothing(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        assert storage.lease() is None
        assert (storage.size_bytes(), storage.queued_items()) == (0, 0)
        assert storage.drain() == []
        storage.close()

    def test_records_come_back_oldest_first_and_unchanged(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        given = [record(n, size=50 + n, count=n + 1, window=n % 3) for n in range(10)]
        given.append(Record("identify", b"\x0a\x02id", 1, 2))
        for r in given:
            assert list(storage.append(r)) == []
        leased = self._lease_all(storage)
        assert len(leased) == len(given)
        assert all(_same(a, b) for a, b in zip(leased, given, strict=True))
        assert len({r.key for r in leased}) == len(leased)
        storage.close()

    def test_counts_follow_appends_leases_and_acks(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        for n in range(4):
            storage.append(record(n, size=100, count=5))
        assert (storage.size_bytes(), storage.queued_items()) == (400, 20)
        first = storage.lease()
        assert first is not None
        assert (storage.size_bytes(), storage.queued_items()) == (400, 15)
        storage.ack(first)
        assert (storage.size_bytes(), storage.queued_items()) == (300, 15)
        for leased in self._lease_all(storage):
            storage.ack(leased)
        assert (storage.size_bytes(), storage.queued_items()) == (0, 0)
        storage.close()

    def test_a_leased_record_is_not_leased_twice(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(record(1))
        assert storage.lease() is not None
        assert storage.lease() is None
        storage.close()

    def test_a_released_record_goes_before_those_never_leased(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        for n in range(3):
            storage.append(record(n))
        first = storage.lease()
        assert first is not None
        storage.release(first)
        again = storage.lease()
        assert again is not None
        assert _same(again, first)
        assert storage.queued_items() == 2
        storage.close()

    def test_ack_of_an_unknown_record_changes_nothing(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(record(1, size=10))
        storage.ack(record(99, size=10))
        assert (storage.size_bytes(), storage.queued_items()) == (10, 1)
        storage.close()

    # -- the budget ---------------------------------------------------------------------------
    def test_over_budget_the_oldest_waiting_records_are_dropped(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path, max_bytes=1000)
        given = [record(n, size=300, window=n) for n in range(5)]
        dropped: list[Record] = []
        for r in given:
            dropped.extend(storage.append(r))
        assert [d.payload for d in dropped] == [g.payload for g in given[:2]]
        assert [d.window for d in dropped] == [0, 1]
        assert storage.size_bytes() == 900
        assert storage.queued_items() == 3
        assert [r.payload for r in self._lease_all(storage)] == [g.payload for g in given[2:]]
        storage.close()

    def test_leased_records_count_against_the_budget_but_are_not_dropped(
        self, tmp_path: Path
    ) -> None:
        storage = self._open(tmp_path, max_bytes=1000)
        storage.append(record(0, size=600))
        leased = storage.lease()
        assert leased is not None
        dropped = list(storage.append(record(1, size=300)))
        dropped += storage.append(record(2, size=300))
        assert [d.payload for d in dropped] == [record(1, size=300).payload]
        storage.ack(leased)
        assert storage.size_bytes() == 300
        storage.close()

    def test_the_newest_record_is_kept_even_alone_over_budget(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path, max_bytes=100)
        assert list(storage.append(record(0, size=500))) == []
        dropped = storage.append(record(1, size=400))
        assert [d.payload for d in dropped] == [record(0, size=500).payload]
        assert storage.queued_items() == 1
        storage.close()

    # -- drain, close, fork -------------------------------------------------------------------
    def test_drain_returns_what_is_not_leased_and_leaves_leases_alone(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        for n in range(4):
            storage.append(record(n, count=2))
        leased = storage.lease()
        assert leased is not None
        drained = storage.drain()
        assert [d.payload for d in drained] == [record(n).payload for n in (1, 2, 3)]
        assert sum(d.count for d in drained) == 6
        assert storage.queued_items() == 0
        assert storage.lease() is None
        storage.ack(leased)
        assert storage.size_bytes() == 0
        storage.close()

    def test_after_fork_in_child_forgets_the_parents_records(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        storage.append(record(1))
        storage.after_fork_in_child()
        assert storage.queued_items() == 0
        assert storage.lease() is None
        storage.close()

    def test_a_random_walk_keeps_exact_accounts(self, tmp_path: Path) -> None:
        rng = random.Random(20261202)
        storage = self._open(tmp_path, max_bytes=4000)
        waiting: dict[bytes, int] = {}  # payload -> items, for records not leased
        leased: dict[int, Record] = {}
        for n in range(400):
            roll = rng.random()
            if roll < 0.45:
                r = record(n, size=rng.randint(20, 400), count=rng.randint(1, 9))
                waiting[r.payload] = r.count
                for d in storage.append(r):
                    assert waiting.pop(d.payload) == d.count, "dropped a record not waiting"
            elif roll < 0.7:
                got = storage.lease()
                assert (got is None) == (not waiting)
                if got is not None:
                    assert waiting.pop(got.payload) == got.count
                    leased[got.key] = got
            elif roll < 0.9 and leased:
                storage.ack(leased.pop(rng.choice(list(leased))))
            elif leased:
                back = leased.pop(rng.choice(list(leased)))
                storage.release(back)
                waiting[back.payload] = back.count
            assert storage.queued_items() == sum(waiting.values())
            held = sum(len(p) for p in waiting) + sum(len(r.payload) for r in leased.values())
            assert storage.size_bytes() == held
        storage.close()

    # -- persistence (only for persistent storages) -------------------------------------------
    def test_a_new_storage_on_the_same_place_gets_what_was_left(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        if not storage.persistent:
            storage.close()
            return
        given = [record(n, size=80, count=n + 1) for n in range(5)]
        for r in given:
            storage.append(r)
        acked = storage.lease()
        assert acked is not None
        storage.ack(acked)
        storage.close()

        later = self.make_storage(tmp_path, max_bytes=self.max_bytes)
        later.open(lambda error: None)
        assert later.recover(7) == sum(r.count for r in given[1:])
        back = self._lease_all(later)
        assert [(r.payload, r.count, r.window) for r in back] == [
            (r.payload, r.count, 7) for r in given[1:]
        ]
        for r in back:
            later.ack(r)
        later.close()
        again = self.make_storage(tmp_path, max_bytes=self.max_bytes)
        again.open(lambda error: None)
        assert again.recover(0) == 0
        assert again.lease() is None
        again.close()

    def test_drained_records_stay_for_a_later_storage(self, tmp_path: Path) -> None:
        storage = self._open(tmp_path)
        if not storage.persistent:
            storage.close()
            return
        for n in range(3):
            storage.append(record(n, count=2))
        assert len(storage.drain()) == 3
        storage.close()
        later = self.make_storage(tmp_path, max_bytes=self.max_bytes)
        later.open(lambda error: None)
        assert later.recover(0) == 6
        later.close()
