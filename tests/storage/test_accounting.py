"""Any sequence of appends, leases, acks, releases, drains, drops and restarts keeps the
storages' accounts exact.

A model (the records waiting, in order, the leased ones, and for a persistent storage the file
each record is in) runs beside each storage; after every step the item and byte counts must
match it, drops must be the oldest waiting records, and a lease must return the next record
unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pug_grpc import MemoryStorage, Record, SqliteStorage, Storage

BUDGET = 3000


def _serial(record: Record) -> int:
    return int(record.payload.split(b"|")[0])


class _Accounts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="pug-accounts-")
        self.storage = self.make()
        self.storage.open(lambda error: None)
        self.storage.recover(0)
        self.waiting: OrderedDict[bytes, Record] = OrderedDict()  # payload -> record, in order
        self.leased: dict[int, Record] = {}
        self.released: list[bytes] = []
        self.on_disk: dict[bytes, tuple[int, Record]] = {}  # payload -> (file, record)
        self.file = 0
        self.serial = 0

    def make(self) -> Storage:
        raise NotImplementedError

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(size=st.integers(1, 900), count=st.integers(1, 20), window=st.integers(0, 3))
    def append(self, size: int, count: int, window: int) -> None:
        self.serial += 1
        payload = f"{self.serial}|".encode() + b"e" * size
        record = Record("events", payload, count, window)
        self.waiting[payload] = record
        self.on_disk[payload] = (self.file, record)
        for d in self.storage.append(record):
            assert d.payload in self._front(), "dropped a record other than the oldest"
            kept = self.waiting.pop(d.payload)
            del self.on_disk[d.payload]
            self.released = [p for p in self.released if p != d.payload]
            assert (d.count, d.window) == (kept.count, kept.window)
        assert payload in self.waiting, "the newest record was dropped"
        if self._held() > BUDGET:
            assert list(self.waiting) == [payload], "over budget with older records waiting"

    @rule()
    def lease(self) -> None:
        got = self.storage.lease()
        if not self.waiting:
            assert got is None
            return
        assert got is not None
        assert got.payload in self._front(), "leased a record other than the oldest"
        expected = self.waiting.pop(got.payload)
        assert (got.kind, got.count, got.window) == (expected.kind, expected.count, expected.window)
        self.leased[got.key] = got

    def _front(self) -> set[bytes]:
        """What may come first: released records (in any order among themselves), else the
        oldest record never leased."""
        back = {p for p in self.released if p in self.waiting}
        if back:
            return back
        return {next(iter(self.waiting))} if self.waiting else set()

    @precondition(lambda self: bool(self.leased))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.leased)))
        acked = self.leased.pop(key)
        self.storage.ack(acked)
        del self.on_disk[acked.payload]

    @precondition(lambda self: bool(self.leased))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.leased)))
        record = self.leased.pop(key)
        self.storage.release(record)
        self.waiting[record.payload] = record
        self.waiting.move_to_end(record.payload, last=False)
        self.released.append(record.payload)

    @rule()
    def drain(self) -> None:
        drained = self.storage.drain()
        assert sorted(d.payload for d in drained) == sorted(self.waiting)
        self.waiting.clear()  # a persistent storage keeps them on disk, for a later one

    @rule()
    def restart(self) -> None:
        """A new storage on the same place takes over the files left, oldest first, while its
        budget has room; what was waiting, leased or drained in them comes back."""
        if not self.storage.persistent:
            return
        self.storage.close()
        self.storage = self.make()
        self.storage.open(lambda error: None)
        left: dict[int, list[Record]] = {}
        for file, record in self.on_disk.values():
            left.setdefault(file, []).append(record)
        self.file += 1  # the new storage's own file, newer than every one left
        taken: list[Record] = []
        for file in sorted(left):
            if sum(len(r.payload) for r in taken) >= BUDGET:
                break
            taken.extend(sorted(left[file], key=_serial))
        assert self.storage.recover(5) == sum(r.count for r in taken)
        self.waiting = OrderedDict(
            (r.payload, Record(r.kind, r.payload, r.count, 5)) for r in taken
        )
        for r in taken:
            self.on_disk[r.payload] = (self.on_disk[r.payload][0], self.waiting[r.payload])
        self.leased = {}
        self.released = []

    def _held(self) -> int:
        return sum(len(p) for p in self.waiting) + sum(len(r.payload) for r in self.leased.values())

    @invariant()
    def accounts_match(self) -> None:
        assert self.storage.queued_items() == sum(r.count for r in self.waiting.values())
        assert self.storage.size_bytes() == self._held()


class _MemoryAccounts(_Accounts):
    def make(self) -> Storage:
        return MemoryStorage(max_bytes=BUDGET)


class _SqliteAccounts(_Accounts):
    def make(self) -> Storage:
        return SqliteStorage(self.directory, max_bytes=BUDGET)


_settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
)
TestMemoryAccounts = _settings(_MemoryAccounts).TestCase
TestSqliteAccounts = settings(_settings, max_examples=40)(_SqliteAccounts).TestCase
