"""The public conformance suite, run on both storages the package ships."""

from __future__ import annotations

from pathlib import Path

from pug_grpc import MemoryStorage, SqliteStorage, Storage
from pug_grpc.testing.storage_conformance import StorageConformance


class TestMemoryStorage(StorageConformance):
    def make_storage(self, directory: Path, *, max_bytes: int) -> Storage:
        return MemoryStorage(max_bytes=max_bytes)


class TestSqliteStorage(StorageConformance):
    def make_storage(self, directory: Path, *, max_bytes: int) -> Storage:
        return SqliteStorage(directory / "spool", max_bytes=max_bytes)
