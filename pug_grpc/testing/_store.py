"""Storage for the local server: one SQLite schema, in memory for tests or in a file for serve.

All access goes through one connection guarded by a lock, so concurrent batches are applied one
transaction at a time; long reads are fetched in keyset-paged chunks so writers are never held
off for long. Like Pug's event table (a ClickHouse ``ReplacingMergeTree``), a redelivered event
is stored again as a second row; :meth:`Store.merge_duplicates` is the background merge, which
keeps one row per project, ``occur_time`` minute, ``kind`` and ``event_id``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pug_grpc.testing._database import Database
from pug_grpc.testing._rows import (
    PAGEVIEW_KINDS,
    ActivitySummary,
    DeletionRow,
    EventRow,
    ProfileRow,
    as_text,
    dump_props,
    load_props,
)

__all__ = ["Store"]

_EVENT_COLUMNS = (
    "seq, event_id, kind, distinct_id, profile_key, session_id, occur_us, received_us,"
    " auto_props, custom_props"
)
_MERGE_KEY = "project_id, occur_us / 60000000, kind, event_id"
_CHUNK = 1000


def _event_from(r: Sequence[Any]) -> EventRow:
    return EventRow(
        event_id=r[1],
        kind=r[2],
        distinct_id=r[3],
        profile_key=r[4],
        session_id=r[5],
        occur_us=r[6],
        received_us=r[7],
        auto_props=load_props(r[8]),
        custom_props=load_props(r[9]),
        seq=r[0],
    )


class Store(Database):
    """Events, profiles, aliases and deletion requests of every project served."""

    # -- writes ---------------------------------------------------------------------------

    def insert_events(self, project_id: str, rows: Sequence[EventRow]) -> int:
        """Store every row (a redelivered event becomes a second row); returns how many."""
        with self._tx() as db:
            keys = {row.distinct_id for row in rows}
            aliases = self._aliases(db, project_id, keys)
            db.executemany(
                "INSERT INTO events (project_id, event_id, kind, distinct_id,"
                " profile_key, session_id, occur_us, received_us, auto_props, custom_props)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        project_id,
                        row.event_id,
                        row.kind,
                        row.distinct_id,
                        aliases.get(row.distinct_id, row.distinct_id),
                        row.session_id,
                        row.occur_us,
                        row.received_us,
                        dump_props(row.auto_props),
                        dump_props(row.custom_props),
                    )
                    for row in rows
                ],
            )
            first_seen: dict[str, int] = {}
            for row in rows:
                key = aliases.get(row.distinct_id, row.distinct_id)
                if not key.startswith("cookieless-"):
                    first_seen[key] = min(first_seen.get(key, row.occur_us), row.occur_us)
            db.executemany(
                "INSERT OR IGNORE INTO profiles (id, project_id, external_id, properties,"
                " create_us, update_us) VALUES (?,?,?,'{}',?,?)",
                [(str(uuid.uuid4()), project_id, k, t, t) for k, t in first_seen.items()],
            )
        return len(rows)

    def merge_duplicates(self, project_id: str | None = None) -> int:
        """Do the background merge now: one row per merge key, the last stored kept.

        Returns how many rows were removed.
        """
        where = "" if project_id is None else "WHERE project_id = ?"
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM events WHERE seq NOT IN"
                f" (SELECT MAX(seq) FROM events {where} GROUP BY {_MERGE_KEY})"
                + ("" if project_id is None else " AND project_id = ?"),
                () if project_id is None else (project_id, project_id),
            )
            return int(cursor.rowcount)

    @staticmethod
    def _aliases(db: sqlite3.Connection, project_id: str, keys: Iterable[str]) -> dict[str, str]:
        anon = [k for k in keys if k.startswith("anon-")]
        found: dict[str, str] = {}
        for start in range(0, len(anon), 500):
            chunk = anon[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                db.execute(
                    "SELECT anonymous_id, external_id FROM aliases WHERE project_id = ?"
                    f" AND anonymous_id IN ({marks})",
                    [project_id, *chunk],
                ).fetchall()
            )
        return found

    def identify(
        self,
        project_id: str,
        external_id: str,
        traits: dict[str, Any],
        *,
        anonymous_id: str = "",
        device_id: str = "",
        now_us: int,
    ) -> ProfileRow:
        """Shallow-merge traits into the profile, absorbing the anonymous profile if named."""
        with self._tx() as db:
            current = self._profile_where(db, project_id, "external_id", external_id)
            properties: dict[str, Any] = dict(current.properties) if current else {}
            create_us = current.create_us if current else now_us
            profile_id = current.id if current else str(uuid.uuid4())
            if anonymous_id and anonymous_id != external_id:
                anon = self._profile_where(db, project_id, "external_id", anonymous_id)
                if anon is not None:
                    properties = {**anon.properties, **properties}
                    create_us = min(create_us, anon.create_us)
                    db.execute("DELETE FROM profiles WHERE id = ?", (anon.id,))
                db.execute(
                    "UPDATE events SET profile_key = ? WHERE project_id = ? AND profile_key = ?",
                    (external_id, project_id, anonymous_id),
                )
                db.execute(
                    "UPDATE aliases SET external_id = ? WHERE project_id = ? AND external_id = ?",
                    (external_id, project_id, anonymous_id),
                )
                db.execute(
                    "INSERT OR REPLACE INTO aliases (project_id, anonymous_id, external_id)"
                    " VALUES (?,?,?)",
                    (project_id, anonymous_id, external_id),
                )
            properties.update(traits)
            if device_id:
                properties["$device_id"] = device_id
            db.execute(
                "INSERT OR REPLACE INTO profiles (id, project_id, external_id, properties,"
                " create_us, update_us) VALUES (?,?,?,?,?,?)",
                (profile_id, project_id, external_id, json.dumps(properties), create_us, now_us),
            )
        return ProfileRow(profile_id, external_id, properties, create_us, now_us, project_id)

    def delete_profile(
        self, project_id: str, profile: ProfileRow, *, now_us: int, request_id: str
    ) -> DeletionRow:
        """Remove a profile and every event attributed to it; record the deletion request."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM events WHERE project_id = ? AND profile_key = ?",
                (project_id, profile.external_id),
            )
            deleted = cursor.rowcount
            db.execute("DELETE FROM profiles WHERE id = ?", (profile.id,))
            db.execute(
                "DELETE FROM aliases WHERE project_id = ? AND external_id = ?",
                (project_id, profile.external_id),
            )
            row = DeletionRow(request_id, profile.external_id, profile.id, deleted, now_us, now_us)
            db.execute(
                "INSERT INTO deletions VALUES (?,?,?,?,?,?,?)",
                (request_id, project_id, row.external_id, row.profile_id, deleted, now_us, now_us),
            )
        return row

    # -- reads ----------------------------------------------------------------------------

    def resolve(self, project_id: str, distinct_id: str) -> str:
        """The profile key a distinct id's events are filed under (an alias's target)."""
        with self._tx() as db:
            found = db.execute(
                "SELECT external_id FROM aliases WHERE project_id = ? AND anonymous_id = ?",
                (project_id, distinct_id),
            ).fetchone()
        return str(found[0]) if found else distinct_id

    def deletion(self, project_id: str, request_id: str) -> DeletionRow | None:
        """A recorded deletion request, or None."""
        with self._tx() as db:
            found = db.execute(
                "SELECT request_id, external_id, profile_id, events_deleted, requested_us,"
                " completed_us FROM deletions WHERE project_id = ? AND request_id = ?",
                (project_id, request_id),
            ).fetchone()
        return DeletionRow(*found) if found else None

    def profile(self, project_id: str, *, id: str = "", external_id: str = "") -> ProfileRow | None:
        """One profile by id or by external id, or None."""
        with self._tx() as db:
            if id:
                return self._profile_where(db, project_id, "id", id)
            return self._profile_where(db, project_id, "external_id", external_id)

    @staticmethod
    def _profile_where(
        db: sqlite3.Connection, project_id: str, column: str, value: str
    ) -> ProfileRow | None:
        found = db.execute(
            "SELECT id, external_id, properties, create_us, update_us FROM profiles"
            f" WHERE project_id = ? AND {column} = ?",
            (project_id, value),
        ).fetchone()
        if found is None:
            return None
        return ProfileRow(found[0], found[1], json.loads(found[2]), found[3], found[4], project_id)

    def profiles(
        self, project_id: str, *, after: tuple[int, str] | None = None
    ) -> Iterator[ProfileRow]:
        """Every profile, oldest first (by create time, then id), fetched in chunks.

        ``after`` continues after the profile with that (create_us, id).
        """
        last = after or (-(2**62), "")
        while True:
            with self._tx() as db:
                chunk = db.execute(
                    "SELECT id, external_id, properties, create_us, update_us FROM profiles"
                    " WHERE project_id = ? AND (create_us, id) > (?, ?)"
                    " ORDER BY create_us, id LIMIT ?",
                    (project_id, last[0], last[1], _CHUNK),
                ).fetchall()
            for r in chunk:
                yield ProfileRow(r[0], r[1], json.loads(r[2]), r[3], r[4], project_id)
            if len(chunk) < _CHUNK:
                return
            last = (chunk[-1][3], chunk[-1][0])

    def events(
        self,
        project_id: str,
        *,
        profile_key: str | None = None,
        distinct_id: str | None = None,
        session_id: str | None = None,
        kind: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        newest_first: bool = True,
        after: tuple[int, int] | None = None,
    ) -> Iterator[EventRow]:
        """Stored rows matching the given conditions, fetched in keyset-paged chunks.

        ``after`` continues after the row with that (occur_us, seq) in the chosen order.
        """
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column, value in (
            ("profile_key", profile_key),
            ("distinct_id", distinct_id),
            ("session_id", session_id),
            ("kind", kind),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if start_us is not None:
            where.append("occur_us >= ?")
            args.append(start_us)
        if end_us is not None:
            where.append("occur_us < ?")
            args.append(end_us)
        order = "DESC" if newest_first else "ASC"
        compare = "<" if newest_first else ">"
        cursor = after
        while True:
            keyset = "" if cursor is None else f" AND (occur_us, seq) {compare} (?, ?)"
            with self._tx() as db:
                chunk = db.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}{keyset}"
                    f" ORDER BY occur_us {order}, seq {order} LIMIT ?",
                    [*args, *(cursor or ()), _CHUNK],
                ).fetchall()
            for r in chunk:
                yield _event_from(r)
            if len(chunk) < _CHUNK:
                return
            cursor = (chunk[-1][6], chunk[-1][0])

    def count_rows(self, project_id: str) -> int:
        """Stored event rows of a project, redeliveries included (before the merge)."""
        with self._tx() as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM events WHERE project_id = ?", (project_id,)
                ).fetchone()[0]
            )

    def count_events(self, project_id: str) -> int:
        """Events of a project once merged: rows with the same merge key count once."""
        with self._tx() as db:
            return int(
                db.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE project_id = ?"
                    f" GROUP BY {_MERGE_KEY})",
                    (project_id,),
                ).fetchone()[0]
            )

    def activity(self, project_id: str, keys: Sequence[str]) -> dict[str, ActivitySummary]:
        """Per-profile activity figures (first/last seen, totals, latest auto-properties)."""
        result: dict[str, ActivitySummary] = {}
        kinds = ",".join("?" * len(PAGEVIEW_KINDS))
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            with self._tx() as db:
                rows = db.execute(
                    "SELECT profile_key, MIN(occur_us), MAX(occur_us), COUNT(*),"
                    f" SUM(kind IN ({kinds})), COUNT(DISTINCT session_id),"
                    " (SELECT auto_props FROM events AS latest WHERE latest.project_id = ?"
                    "  AND latest.profile_key = events.profile_key"
                    "  ORDER BY occur_us DESC, seq DESC LIMIT 1)"
                    f" FROM events WHERE project_id = ? AND profile_key IN ({marks})"
                    " GROUP BY profile_key",
                    [*PAGEVIEW_KINDS, project_id, project_id, *chunk],
                ).fetchall()
            for key, first, last, total, pageviews, sessions, auto in rows:
                result[key] = ActivitySummary(
                    first, last, total, int(pageviews or 0), sessions, load_props(auto)
                )
        return result

    def heatmap(
        self, project_id: str, profile_key: str, start_us: int | None, end_us: int | None
    ) -> list[tuple[str, int]]:
        """Events per UTC day for one profile, oldest day first."""
        with self._tx() as db:
            return [
                (str(day), int(count))
                for day, count in db.execute(
                    "SELECT date(occur_us / 1000000, 'unixepoch') AS day, COUNT(*) FROM events"
                    " WHERE project_id = ? AND profile_key = ? AND occur_us >= ? AND occur_us < ?"
                    " GROUP BY day ORDER BY day",
                    (
                        project_id,
                        profile_key,
                        -(2**62) if start_us is None else start_us,
                        2**62 if end_us is None else end_us,
                    ),
                ).fetchall()
            ]

    def event_kinds(self, project_id: str, kind: str = "") -> list[tuple[str, int, int]]:
        """(kind, count, last seen µs) for every kind, most frequent first."""
        with self._tx() as db:
            return db.execute(
                "SELECT kind, COUNT(*), MAX(occur_us) FROM events WHERE project_id = ?"
                " AND (? = '' OR kind = ?) GROUP BY kind ORDER BY COUNT(*) DESC, kind",
                (project_id, kind, kind),
            ).fetchall()

    def property_keys(
        self, project_id: str, column: str, kind: str = ""
    ) -> list[tuple[str, str, int, int]]:
        """(key, value case, count, last seen µs) of ``auto_props`` or ``custom_props``."""
        if column not in ("auto_props", "custom_props"):
            raise ValueError(column)
        with self._tx() as db:
            return db.execute(
                "SELECT p.key, json_extract(p.value, '$[0]'), COUNT(*), MAX(occur_us)"
                f" FROM events, json_each(events.{column}) AS p WHERE project_id = ?"
                " AND (? = '' OR kind = ?) GROUP BY 1, 2 ORDER BY COUNT(*) DESC, p.key",
                (project_id, kind, kind),
            ).fetchall()

    def property_values(
        self, project_id: str, column: str, key: str, kind: str = "", limit: int = 1000
    ) -> list[str]:
        """Distinct values of one event property as text, most frequent first."""
        if column not in ("auto_props", "custom_props"):
            raise ValueError(column)
        with self._tx() as db:
            rows = db.execute(
                "SELECT json_extract(p.value, '$[0]') AS t, json_extract(p.value, '$[1]') AS v"
                f" FROM events, json_each(events.{column}) AS p WHERE project_id = ? AND p.key = ?"
                " AND (? = '' OR kind = ?) GROUP BY t, v ORDER BY COUNT(*) DESC, v LIMIT ?",
                (project_id, key, kind, kind, limit),
            ).fetchall()
        return [as_text((case, value)) for case, value in rows]
