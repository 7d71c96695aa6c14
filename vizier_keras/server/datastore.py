"""Open Source Vizier's storage and servicer, as this service runs them.

:class:`SQLDataStore` is OSS's SQLite datastore with the hot path trimmed (indexes, write-ahead
logging, plain SQL for the reads every suggestion makes); :class:`Servicer` is OSS's servicer
without its study-state check, since this service keeps the Vertex study state itself. Both lean
on OSS 0.1.24's internals (its tables, ``_connection``, ``_lock``); this module is the one place
that does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from typing import Any

import sqlalchemy
from google.longrunning import operations_pb2
from vizier._src.service import custom_errors, sql_datastore, study_pb2, vizier_service
from vizier._src.service import resources as oss_resources

from vizier_keras.errors import (
    ApiError,
    InternalError,
    ResourceExhaustedError,
    StartupError,
    UnavailableError,
)

logger = logging.getLogger(__name__)

__all__ = ["STORAGE_ERRORS", "SQLDataStore", "Servicer", "check_database"]

# What a database failure raises, through SQLAlchemy or straight from sqlite3.
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error)

# The tables of OSS's datastore (and SQLite's own).
TABLES = {"owners", "studies", "trials", "suggestion_operations", "early_stopping_operations",
          "sqlite_sequence"}


def check_database(path: str) -> None:
    """Refuse a file that is not a database of this service, before anything writes to it.

    A missing or empty file is fine (it becomes one); so is a SQLite database whose tables are
    all OSS Vizier's.

    Raises:
        StartupError: One sentence naming the file, what is wrong and what to do.
    """
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    fix = "give --database a new file, or one that a vizier-keras server made"
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as e:
        raise StartupError(f"{path} cannot be read ({e.strerror}); {fix}") from None
    if header != b"SQLite format 3\x00":
        raise StartupError(f"{path} is not a SQLite database; {fix}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        raise StartupError(f"{path} cannot be read as a SQLite database ({e}); {fix}") from None
    foreign = sorted(tables - TABLES)
    if foreign:
        raise StartupError(f"{path} holds tables of another application "
                           f"({', '.join(foreign[:5])}) and is left untouched; {fix}")


class SQLDataStore(sql_datastore.SQLDataStore):
    """OSS's SQL datastore with the hot path trimmed: indexes on the columns every trial and
    operation query filters on, and no study rewrite when a policy returns no metadata."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        with self._lock:
            for statement in (
                "CREATE INDEX IF NOT EXISTS vk_trials_study ON trials (owner_id, study_id)",
                "CREATE INDEX IF NOT EXISTS vk_ops_client ON suggestion_operations "
                "(owner_id, study_id, client_id)",
                # Write-ahead logging: a commit no longer waits for a full sync of the file,
                # and readers do not block the writer. A killed server loses nothing it
                # committed; only a power cut can lose the last commits (synchronous=NORMAL).
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
            ):
                self._connection.exec_driver_sql(statement)
            self._connection.commit()

    def update_metadata(self, study_name: str, study_metadata: Any, trial_metadata: Any) -> None:
        study_metadata, trial_metadata = list(study_metadata), list(trial_metadata)
        if not study_metadata and not trial_metadata:
            return
        super().update_metadata(study_name, study_metadata, trial_metadata)

    # The reads below run on every suggestion. They are OSS's queries on OSS's tables, sent as
    # plain SQL: building and compiling SQLAlchemy statements cost more than running them.

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        with self._lock:
            return list(self._connection.exec_driver_sql(sql, params).fetchall())

    def _study_exists(self, study_name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM studies WHERE study_name = ?", study_name))

    def load_study(self, study_name: str) -> study_pb2.Study:
        rows = self._rows("SELECT serialized_study FROM studies WHERE study_name = ?",
                          study_name)
        if not rows:
            raise custom_errors.NotFoundError(f"Failed to find study name: {study_name}")
        return study_pb2.Study.FromString(rows[0][0])

    def get_trial(self, trial_name: str) -> study_pb2.Trial:
        rows = self._rows("SELECT serialized_trial FROM trials WHERE trial_name = ?",
                          trial_name)
        if not rows:
            raise custom_errors.NotFoundError(f"Failed to find trial name: {trial_name}")
        return study_pb2.Trial.FromString(rows[0][0])

    def list_trials(self, study_name: str) -> list[study_pb2.Trial]:
        res = oss_resources.StudyResource.from_name(study_name)
        if not self._study_exists(study_name):
            raise custom_errors.NotFoundError(f"Study name {study_name} does not exist.")
        rows = self._rows("SELECT serialized_trial FROM trials WHERE owner_id = ? AND "
                          "study_id = ?", res.owner_id, res.study_id)
        return [study_pb2.Trial.FromString(row[0]) for row in rows]

    def max_trial_id(self, study_name: str) -> int:
        res = oss_resources.StudyResource.from_name(study_name)
        if not self._study_exists(study_name):
            raise custom_errors.NotFoundError(f"Study {study_name} does not exist.")
        rows = self._rows("SELECT MAX(trial_id) FROM trials WHERE owner_id = ? AND "
                          "study_id = ?", res.owner_id, res.study_id)
        return int(rows[0][0] or 0)

    def list_suggestion_operations(self, study_name: str, client_id: str,
                                   filter_fn: Any = None) -> list[Any]:
        res = oss_resources.StudyResource.from_name(study_name)
        rows = self._rows("SELECT serialized_op FROM suggestion_operations WHERE owner_id = ? "
                          "AND study_id = ? AND client_id = ?", res.owner_id, res.study_id,
                          client_id)
        if not rows:
            raise custom_errors.NotFoundError(
                "Could not find (study_name, client_id):", (study_name, client_id))
        ops = [operations_pb2.Operation.FromString(row[0]) for row in rows]
        return ops if filter_fn is None else [op for op in ops if filter_fn(op)]

    def max_suggestion_operation_number(self, study_name: str, client_id: str) -> int:
        res = oss_resources.StudyResource.from_name(study_name)
        rows = self._rows("SELECT MAX(operation_number) FROM suggestion_operations WHERE "
                          "owner_id = ? AND study_id = ? AND client_id = ?", res.owner_id,
                          res.study_id, client_id)
        if rows[0][0] is None:
            raise custom_errors.NotFoundError(
                "Could not find (study_name, client_id):", (study_name, client_id))
        return int(rows[0][0])

    def storage_error(self, error: Exception) -> ApiError:
        """The API error for a database failure, after the connection is made usable again.

        A failed write can leave SQLAlchemy's connection in a transaction that must be rolled
        back before anything else runs on it; without that, every later request failed too,
        also after the cause (a full disk) was gone. The messages name the cause and what to
        do, never SQL.
        """
        with self._lock:
            try:
                self._connection.rollback()
            except Exception:  # the connection may be gone altogether; the next call says so
                logger.debug("rollback after a database error failed", exc_info=True)
        text = str(getattr(error, "orig", None) or error).lower()
        logger.warning("database error: %s", error)
        if "full" in text or "disk i/o error" in text:
            return ResourceExhaustedError("the database's disk is full or failing; free space, "
                                          "then retry")
        if "locked" in text or "busy" in text:
            return UnavailableError("the database is locked by another process; retry")
        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlite3.OperationalError)):
            return UnavailableError(f"the database is unavailable ({type(error).__name__}); "
                                    "retry")
        return InternalError(f"a database error ({type(error).__name__}); see the server log")

    def ping(self) -> None:
        """Raise unless the database answers a read."""
        self._rows("SELECT 1")

    def unfinished_suggestion_operations(self) -> list[operations_pb2.Operation]:
        """Every suggestion operation of every study that is not done."""
        ops = [operations_pb2.Operation.FromString(row[0])
               for row in self._rows("SELECT serialized_op FROM suggestion_operations")]
        return [op for op in ops if not op.done]

    def close(self) -> None:
        """Release the connection and the engine (best effort)."""
        try:
            self._connection.close()
            self._engine.dispose()
        except Exception:  # closing is best effort
            logger.debug("closing the datastore failed", exc_info=True)


class Servicer(vizier_service.VizierServicer):
    """OSS's servicer. This service keeps the Vertex study state itself (OSS's stays ACTIVE), so
    OSS's check, a study read before every mutation, is skipped."""

    def _study_is_immutable(self, study_name: str) -> bool:
        return False

    def use_datastore(self, make: Any) -> SQLDataStore:
        """Serve through ``make(engine)`` instead of the datastore OSS built for its URL.

        OSS 0.1.24's servicer made an engine (one SQLite connection) for the URL; the new
        datastore takes over that engine.
        """
        oss_store: Any = vars(self)["datastore"]
        oss_store._connection.close()
        store = make(oss_store._engine)
        self.datastore = store
        return store

    def study_lock(self, oss_study_name: str) -> Any:
        """OSS's own per-study lock (the one its trial writes hold)."""
        return self._study_name_to_lock[oss_study_name]
