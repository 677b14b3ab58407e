"""The Dagster instance of this project (``instance_class`` in the repo's dagster.yaml): Dagster's default SQLite
storage, same files in the same places, with one change: the event log reuses one SQLAlchemy engine per database
file instead of building a new one for every transaction.

Why: Dagster's ``SqliteEventLogStorage`` calls ``create_engine`` in every ``_connect`` (and in every ``has_table``,
which it asks once per asset event and once per check event), so a run process builds ~3 engines per event, each
doing SQLAlchemy's first-connect setup. On a 208-event toy run (15 months x 3 assets x 2 partitioned checks, in
process, ext4) that took the run from 2.32 s to 1.68 s (medians of 5) and 670 ``create_engine`` calls down to 21;
the project's single-run backfills log a few hundred events per run.

What stays as it is, on purpose:
- the layout: run storage in ``$DAGSTER_HOME/history``, one event-log SQLite file per run plus ``index.db`` in
  ``history/runs``, schedules in ``schedules``, so existing history keeps working and can be read by a plain
  Dagster instance. ``instance_class`` (rather than an ``event_log_storage:`` entry) is how the storage gets the
  instance's own directory: ``dagster dev`` without DAGSTER_HOME (a temporary home) and
  ``InstanceRef.from_dir(other_home)`` get theirs too, where ``base_dir: {env: DAGSTER_HOME}`` would not.
- ``NullPool``: each transaction still opens and closes its own SQLite connection, so the webserver, the daemon and
  the run processes share the files as before, and closing the last connection still checkpoints the WAL into
  the run's ``.db`` file, which is what the webserver's file watcher (live run logs) waits for.
- durability: no ``PRAGMA synchronous`` change (``NORMAL`` measured no better than the engine reuse alone).

And one addition: a burst of events can be stored in one transaction per file (``one_transaction``) instead of one
per event and table (Dagster's ``store_event`` opens, commits and closes 2-3 connections per asset or check event:
on SQLite each commit is an fsync and each close a WAL checkpoint). The instance turns on Dagster's own event
batching (``DAGSTER_EVENT_BATCH_SIZE``, default here 1000) so that the batches Dagster already forms - a run's planned
materializations and checks, a step's per-partition materializations - go through it, and ``events_in_one_transaction``
lets a step store the events it yields at its end (a month's materialization and check results, 7 x 15 in a 15-month
backfill) the same way. Nothing is held back in memory: every event is written when Dagster hands it over, and the
webserver sees them at the commit, milliseconds later.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress

import dagster as dg
import sqlalchemy
import sqlalchemy.exc
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Engines kept per process (least recently used dropped first): a run process uses two (its run's file and
# index.db); the webserver reads many runs' files, and a NullPool engine holds no open connection, so dropping
# one costs nothing but rebuilding it.
MAX_ENGINES = 64
# Events of one of Dagster's batches stored at once (see the module's doc); DAGSTER_EVENT_BATCH_SIZE overrides it.
EVENT_BATCH_SIZE = 1000


class CachedEngineSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one engine per shard (run file or index.db) and ``has_table`` answers kept once
    a table is found (tables are only ever added, by ``dagster instance migrate``; a missing one is asked again)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()  # not _db_lock: has_table is called while _connect holds that
        self._tables_found: set[str] = set()
        self._held = threading.local()  # .connections: shard -> open connection of this thread's one_transaction
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # the parent's builds a SqliteEventLogStorage
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            self._engines[shard] = engine
            while len(self._engines) > MAX_ENGINES:
                self._engines.popitem(last=False)
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # the parent's, with the cached engine
        held = getattr(self._held, "connections", None)
        if held is not None:  # inside this thread's one_transaction, which holds _db_lock
            if shard not in held:
                held[shard] = self._held.stack.enter_context(self._open(shard))
            yield held[shard]
            return
        with self._db_lock, self._open(shard) as conn:
            yield conn

    @contextmanager
    def _open(self, shard: str) -> Iterator[Connection]:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Every event this thread stores inside the block goes into one transaction per database file (the run's,
        index.db), committed when the block ends - also when it ends by an exception, as the events were stored by
        then. Other threads of the process wait for the block (Dagster's ``_db_lock``), other processes' writers for
        the commit (SQLite's busy timeout). Nested blocks join the outer one."""
        if getattr(self._held, "connections", None) is not None:
            yield
            return
        with self._db_lock:
            stack = ExitStack()
            self._held.connections, self._held.stack = {}, stack
            try:
                yield
            finally:
                self._held.connections = self._held.stack = None
                stack.close()  # exits each connection's transaction as a success: commits

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's, without loading its ~50 migration scripts (Alembic's revision map, ~0.12 s of each run
        process) where it would not use them: a database with a recorded revision is left as it is (Dagster's compares
        nothing and does nothing then), and a new run's database is a copy of an empty one Dagster initialized before
        with the same Dagster and SQLAlchemy (kept beside the runs' files) when there is one."""
        path = engine.url.database
        if not path or path == ":memory:":
            super()._initdb(engine, for_index_shard)
        elif os.path.exists(path) and _stamped(engine):
            return
        elif for_index_shard or not self._copy_template(path):
            super()._initdb(engine, for_index_shard)
            if not for_index_shard:
                self._keep_template(path)

    @property
    def _template(self) -> str:
        name = f".empty-run-dagster-{dg.__version__}-sqlalchemy-{sqlalchemy.__version__}.sqlite"
        return os.path.join(self._base_dir, name)

    def _copy_template(self, path: str) -> bool:
        """Put a copy of the empty template at ``path`` unless a file is there already; whether it did."""
        if not os.path.isfile(self._template) or os.path.exists(path):
            return False
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.partial"
        try:
            shutil.copyfile(self._template, partial)
            os.link(partial, path)  # fails if another process made the file meanwhile: Dagster's init then
            return True
        except OSError:
            return False
        finally:
            with suppress(OSError):
                os.remove(partial)

    def _keep_template(self, path: str) -> None:
        """Keep the database Dagster just initialized (no event in it yet) as the template of the next runs'."""
        if os.path.exists(self._template) or os.path.exists(f"{path}-wal"):  # a -wal file: not all in the file yet
            return
        partial = f"{self._template}.{os.getpid()}.{threading.get_ident()}.partial"
        try:
            shutil.copyfile(path, partial)
            if _stamped(create_engine(f"sqlite:///{partial}", poolclass=NullPool)):
                os.replace(partial, self._template)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                os.remove(partial)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        with self.one_transaction():
            for event in events:
                self.store_event(event)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_found:
            return True
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables_found.add(table_name)
        return found

    def dispose(self) -> None:
        super().dispose()
        with self._engines_lock:
            self._engines.clear()


def _stamped(engine: Engine) -> bool:
    """Whether the database has a recorded Alembic revision (Dagster stamps the databases it creates)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version LIMIT 1")).first() is not None
    except sqlalchemy.exc.DBAPIError:  # no such table
        return False


def events_in_one_transaction(instance: dg.DagsterInstance) -> AbstractContextManager[None]:
    """``one_transaction`` of ``instance``'s event log when it is this project's, else nothing (another storage)."""
    storage = instance.event_log_storage
    return storage.one_transaction() if isinstance(storage, CachedEngineSqliteEventLogStorage) else nullcontext()


class ProjectSqliteStorage(DagsterSqliteStorage):
    """Dagster's default storage (``DagsterSqliteStorage``), its event log swapped for the cached-engine one."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = CachedEngineSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # the parent's builds a DagsterSqliteStorage
        return cls.from_local(inst_data=inst_data, **config_value)


class ProjectInstance(dg.DagsterInstance):
    """A ``DagsterInstance`` whose default storage (when dagster.yaml names none) is ``ProjectSqliteStorage`` in the
    instance's own directory; every other default is Dagster's."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    def _get_event_batch_size(self) -> int:  # Dagster's reads DAGSTER_EVENT_BATCH_SIZE, default 0 (no batches)
        return int(os.getenv("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE)))

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        return {
            **InstanceRef.config_defaults(base_dir),
            # config_yaml: JSON is YAML, and json is ours to import (PyYAML comes only with Dagster)
            "storage": ConfigurableClassData(
                __name__, ProjectSqliteStorage.__name__, json.dumps({"base_dir": base_dir})
            ),
        }
