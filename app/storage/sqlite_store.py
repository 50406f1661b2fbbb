"""PointStore: one SQLite database per collection (WAL), the source of truth for its points."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from app.core.errors import InsufficientStorage, is_disk_full

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    id      TEXT PRIMARY KEY,          -- the external id as JSON, so 5 and "5" stay distinct
    slot    INTEGER NOT NULL UNIQUE,   -- the row in the exact matrix and the label in the graph
    vector  BLOB NOT NULL,             -- little-endian float32
    payload TEXT,                      -- JSON object or NULL
    seq     INTEGER NOT NULL           -- the write batch that last touched this point
);
-- An opening reads the points written after its checkpoint by this index instead of the whole table.
CREATE INDEX IF NOT EXISTS points_by_seq ON points (seq);
CREATE TABLE IF NOT EXISTS tombstones (slot INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sources (  -- what a point was embedded from, in collections that keep it
    id      TEXT PRIMARY KEY,          -- the point's id, as in points
    kind    TEXT NOT NULL,             -- text | sequence | image
    data    BLOB NOT NULL              -- UTF-8 text, or the image's bytes
);
CREATE TABLE IF NOT EXISTS events (  -- interactions, for user profiles and the ranker
    user    TEXT NOT NULL,
    item    TEXT NOT NULL,             -- the point's id, as in points (kept when the point is deleted)
    type    TEXT NOT NULL,             -- view | click | cart | purchase | rating
    value   REAL NOT NULL,             -- the rating, or 1
    time    REAL NOT NULL,             -- epoch seconds
    query   TEXT,                      -- the search words that led to it, when the client said (fine-tuning)
    UNIQUE (user, item, type, time, value)  -- a resent event is a duplicate, not a second interaction
);
CREATE TABLE IF NOT EXISTS search_log (  -- searches asked with "log": what was shown for which words
    time    REAL NOT NULL,
    query   TEXT NOT NULL,
    shown   TEXT NOT NULL              -- the ids of the results, as a JSON list, best first
);
-- The lexical index: one row per point (rowid = its slot) holding its tokens, for FTS5's bm25();
-- empty unless the collection keeps one. `key` is the point's id, so a reader can tell a row of a
-- batch it cannot see yet from one of the point it knows.
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(key UNINDEXED, body, tokenize='unicode61 remove_diacritics 0');
INSERT OR IGNORE INTO meta VALUES ('seq', '0');
"""


class StoredPoint(NamedTuple):  # a tuple: 400k of them are made at every start, a dataclass took 3x as long
    id_json: str
    slot: int
    vector: bytes
    payload: bytes | None  # the JSON's UTF-8 bytes, as the table keeps them
    seq: int


POINTS_CHUNK = 20_000  # rows per chunk of `points`: an opening holds one chunk of rows at a time

_LOG_TABLES = {"events": "user, item, type, value, time, query", "search_log": "time, query, shown"}


class PointStore:
    """Each write batch is one transaction with its own sequence number.

    Tombstones remember which slots a delete freed after the last checkpoint, so a restart can
    replay deletes into the loaded graph; they are pruned once a checkpoint covers them.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL fsyncs the WAL on every commit: an acknowledged write survives power loss.
        # NORMAL survives a killed process but may lose the last commits on power loss.
        self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        self._lock = threading.Lock()  # one connection: a read must never see a batch mid-transaction
        self.seq = int(self.get_meta("seq"))
        # Lexical searches read on a connection of their own (WAL: a committed state, never waiting on a writer).
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader_lock = threading.Lock()

    def _migrate(self) -> None:
        """Columns added since a database was made (a collection from an earlier release, or its snapshot)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
        if "query" not in columns:
            self._conn.execute("ALTER TABLE events ADD COLUMN query TEXT")

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._conn.close()
            self._reader.close()

    def backup(self, dest: Path) -> None:
        """Copy the database into the new file `dest` with SQLite's online backup: one consistent state.

        The copy is switched to a rollback journal so that it is one self-contained file (no -wal beside it).
        """
        target = sqlite3.connect(dest, isolation_level=None)
        try:
            with self._lock:  # one connection: never copy while a batch is mid-transaction
                self._conn.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()

    def get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @contextlib.contextmanager
    def _transaction(self, cur: sqlite3.Cursor) -> Iterator[None]:
        """All of it or none of it (lock held). A full disk becomes InsufficientStorage (507): SQLite may have
        rolled the transaction back itself by then, so the rollback here only runs if one is still open."""
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield
            cur.execute("COMMIT")
        except BaseException as err:
            if self._conn.in_transaction:
                cur.execute("ROLLBACK")
            if is_disk_full(err):
                raise InsufficientStorage(f"no space left for {self.path.parent.name}: nothing was written") from err
            raise

    def write_batch(
        self,
        upserts: list[tuple[str, int, bytes, str | None]],
        deletes: list[tuple[str, int]],
        sources: list[tuple[str, str, bytes] | None] | None = None,
        lexical: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        seq: int | None = None,
    ) -> int:
        """Apply one batch atomically; returns its sequence number. Nothing is visible until commit.

        `sources`, one entry per upsert (None for a point sent as a vector), replaces what the upserted
        points were made from; without it the sources table is not touched, which keeps bulk vector
        loads into collections that keep no sources free of its cost. `lexical`, one document per upsert
        (see app/index/tokens.py), replaces their rows in the lexical index, likewise only when given.
        `meta` entries are set in the same transaction (a config that changes with the vectors). `seq` numbers
        the batch when the caller does (a shard's copies all take the number their router gave the batch); it
        must be above every number before, since checkpoints say which batches they cover by it.
        """
        if seq is not None and seq <= self.seq:
            raise ValueError(f"batch number {seq} is not above the last one, {self.seq}")
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                seq = self.seq + 1 if seq is None else seq
                if deletes:
                    cur.executemany("DELETE FROM points WHERE id = ?", [(i,) for i, _ in deletes])
                    cur.executemany("INSERT INTO tombstones VALUES (?, ?)", [(s, seq) for _, s in deletes])
                    cur.executemany("DELETE FROM sources WHERE id = ?", [(i,) for i, _ in deletes])
                    cur.executemany("DELETE FROM lexical WHERE rowid = ?", [(s,) for _, s in deletes])
                if upserts:
                    cur.executemany(
                        "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?)",
                        [(i, s, v, p, seq) for i, s, v, p in upserts],
                    )
                if sources is not None:
                    cur.executemany("DELETE FROM sources WHERE id = ?", [(u[0],) for u in upserts])
                    cur.executemany("INSERT INTO sources VALUES (?, ?, ?)", [s for s in sources if s is not None])
                if lexical is not None:
                    self._write_lexical(
                        cur, [(s, i, body) for (i, s, _, _), body in zip(upserts, lexical, strict=True)]
                    )
                for key, value in (meta or {}).items():
                    cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (str(seq),))
            self.seq = seq
        return seq

    @staticmethod
    def _write_lexical(cur: sqlite3.Cursor, rows: list[tuple[int, str, str]]) -> None:
        cur.executemany("DELETE FROM lexical WHERE rowid = ?", [(slot,) for slot, _, _ in rows])
        cur.executemany("INSERT INTO lexical (rowid, key, body) VALUES (?, ?, ?)", [r for r in rows if r[2]])

    def rewrite_lexical(self, rows: list[tuple[int, str, str]]) -> None:
        """Replace the lexical rows of these (slot, id, document) in one transaction (a rebuild's chunk)."""
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                self._write_lexical(cur, rows)

    def clear_lexical(self) -> None:
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                cur.execute("DELETE FROM lexical")

    def lexical_search(self, match: str, limit: int | None) -> list[tuple[int, str, float]]:
        """(slot, id, bm25 score: higher is better) of the best `limit` rows for an FTS5 query (None: all)."""
        sql = "SELECT rowid, key, -bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY rank"
        with self._reader_lock:
            if limit is None:
                return self._reader.execute(sql, (match,)).fetchall()
            return self._reader.execute(sql + " LIMIT ?", (match, limit)).fetchall()

    def points(self, chunk: int | None = None, *, since: int | None = None) -> Iterator[list[StoredPoint]]:
        """Every stored point (or those batches after `since` wrote) in slot order, `chunk` rows at a time: a
        caller filling memory from them never holds a second copy of the whole table (consume it fully: the
        connection is held meanwhile)."""
        sql = "SELECT id, slot, vector, CAST(payload AS BLOB), seq FROM points"
        with self._lock:
            if since is None:
                cursor = self._conn.execute(sql + " ORDER BY slot")
            else:
                # Named: without statistics SQLite walks the slot index for the order and reads every row.
                cursor = self._conn.execute(sql + " INDEXED BY points_by_seq WHERE seq > ? ORDER BY slot", (since,))
            while rows := cursor.fetchmany(chunk or POINTS_CHUNK):
                yield list(map(StoredPoint._make, rows))

    def count(self) -> int:
        with self._lock:
            (found,) = self._conn.execute("SELECT count(*) FROM points").fetchone()
        return int(found)

    def ids_written_since(self, seq: int) -> list[str]:
        """The ids (as JSON) of the stored points that batches after `seq` wrote."""
        with self._lock:
            return [i for (i,) in self._conn.execute("SELECT id FROM points WHERE seq > ?", (seq,))]

    def max_slot(self) -> int:
        """The highest slot a stored point holds, -1 when there is none."""
        with self._lock:
            (found,) = self._conn.execute("SELECT max(slot) FROM points").fetchone()
        return -1 if found is None else int(found)

    def sources(self, ids: list[str]) -> dict[str, tuple[str, bytes]]:
        """id → (kind, data) for the given ids that have a stored source."""
        return {i: (kind, data) for i, kind, data in self._source_rows(ids, "kind, data")}

    def source_kinds(self, ids: list[str]) -> dict[str, str]:
        """id → kind ("text", "image", …) for the given ids that have a stored source, without reading the data."""
        return dict(self._source_rows(ids, "kind"))

    def _source_rows(self, ids: list[str], columns: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for start in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._conn.execute(f"SELECT id, {columns} FROM sources WHERE id IN ({marks})", chunk)
        return rows

    def add_events(
        self, rows: list[tuple[str, str, str, float, float]], queries: list[str | None] | None = None
    ) -> list[bool]:
        """Store (user, item, type, value, time) rows, with the search words behind each where known, in one
        transaction; True where a row was new."""
        inserted = []
        sql = "INSERT OR IGNORE INTO events (user, item, type, value, time, query) VALUES (?, ?, ?, ?, ?, ?)"
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                for row, query in zip(rows, queries or [None] * len(rows), strict=True):
                    cur.execute(sql, (*row, query))
                    inserted.append(cur.rowcount == 1)
        return inserted

    def queried_events(self) -> list[tuple[str, str, str, float, str]]:
        """(user, item, type, time, query) of the events that name the search behind them, oldest first."""
        conn = sqlite3.connect(self.path)  # a snapshot of its own (WAL), like events()
        try:
            sql = "SELECT user, item, type, time, query FROM events WHERE query IS NOT NULL ORDER BY time, rowid"
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def log_searches(self, searches: list[tuple[str, list[Any]]], at: float) -> None:
        """Keep (query words, ids shown) of searches asked with "log", stamped `at`, in one transaction."""
        rows = [(at, words, json.dumps(shown)) for words, shown in searches]
        with self._lock:
            cur = self._conn.cursor()
            with self._transaction(cur):
                cur.executemany("INSERT INTO search_log VALUES (?, ?, ?)", rows)

    def search_log(self) -> list[tuple[float, str, list[Any]]]:
        """(time, query words, ids shown) of every logged search, oldest first."""
        conn = sqlite3.connect(self.path)
        try:
            rows = conn.execute("SELECT time, query, shown FROM search_log ORDER BY time, rowid").fetchall()
        finally:
            conn.close()
        return [(at, words, json.loads(shown)) for at, words, shown in rows]

    def take_log(self, source: Path, *, replace: bool = False) -> None:
        """Add the events and logged searches of the database at `source` (a snapshot's) to this one's, in one
        transaction; with `replace`, instead of this one's."""
        with self._lock:
            self._conn.execute("ATTACH DATABASE ? AS source", (str(source),))
            try:
                cur = self._conn.cursor()
                with self._transaction(cur):
                    for table, columns in _LOG_TABLES.items():
                        if replace:
                            cur.execute(f"DELETE FROM main.{table}")
                        cur.execute(
                            f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}"
                        )
            finally:
                self._conn.execute("DETACH DATABASE source")

    def events(self, batch: int = 50_000) -> Iterator[list[tuple[str, str, str, float, float]]]:
        """Every stored event, oldest first, in batches, so a long history never sits in one list.

        A connection of its own reads one consistent snapshot (WAL) while writers go on.
        """
        conn = sqlite3.connect(self.path)
        try:
            rows = conn.execute("SELECT user, item, type, value, time FROM events ORDER BY time, rowid")
            while chunk := rows.fetchmany(batch):
                yield chunk
        finally:
            conn.close()

    def tombstones_after(self, seq: int) -> list[int]:
        with self._lock:
            return [s for (s,) in self._conn.execute("SELECT slot FROM tombstones WHERE seq > ?", (seq,))]

    def prune_tombstones(self, upto_seq: int) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM tombstones WHERE seq <= ?", (upto_seq,))
