"""A database file of the embedded service, read without a server: its studies and trials as
the v1 messages the server would answer, and a study's deletion when no server holds the file.

Light on purpose (sqlite3 and OSS's generated protos; no JAX, no SQLAlchemy): the results layer
and the CLI read databases with it, on machines without the ``[local]`` extra. The tables are
Open Source Vizier 0.1.24's, as :mod:`vizier_keras.server.datastore` serves them. Every read
opens the file afresh, read-only, so a reader sees what a running server committed (the file is
in write-ahead-log mode) and never blocks it.

Example::

    db = DatabaseFile("tuning/vizier.db")
    for study in db.list_studies():
        trials = db.list_trials(StudyName.from_name(study["name"]))
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator

from vizier._src.service import study_pb2

from vizier_keras.errors import NotFoundError, ValidationError
from vizier_keras.resources import StudyName
from vizier_keras.server import messages, names
from vizier_keras.wire import Json

__all__ = ["DatabaseFile"]



class DatabaseFile:
    """The studies of one database file.

    Raises (on construction):
        ValidationError: ``path`` does not exist or is not a database of this service.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ValidationError("database", self.path, "does not exist")
        with self._read() as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"studies", "trials"} <= tables:
            raise ValidationError("database", self.path, "is not a database of the embedded "
                                  "Vizier service (it has no studies and trials tables)")

    def __repr__(self) -> str:
        return f"DatabaseFile({self.path!r})"

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as e:
            raise ValidationError("database", self.path, f"cannot be opened ({e})") from None
        try:
            yield db
        except sqlite3.DatabaseError as e:
            raise ValidationError("database", self.path, f"cannot be read ({e})") from None
        finally:
            db.close()

    def list_studies(self) -> list[Json]:
        """Every study in the file (all projects and locations), oldest first."""
        with self._read() as db:
            rows = db.execute("SELECT serialized_study FROM studies").fetchall()
        studies = [study_pb2.Study.FromString(row[0]) for row in rows]
        studies.sort(key=lambda s: (s.create_time.seconds, s.create_time.nanos, s.name))
        return [self._study_json(s) for s in studies if self._spec(s) is not None]

    def get_study(self, name: StudyName) -> Json:
        with self._read() as db:
            rows = db.execute("SELECT serialized_study FROM studies WHERE study_name = ?",
                              (names.oss_study(name),)).fetchall()
        if not rows:
            raise NotFoundError(f"study {name.name} is not in {self.path}")
        return self._study_json(study_pb2.Study.FromString(rows[0][0]))

    def list_trials(self, name: StudyName) -> list[Json]:
        """The study's trials, by id."""
        self.get_study(name)
        owner = names.oss_owner(name.parent)
        with self._read() as db:
            rows = db.execute("SELECT serialized_trial FROM trials WHERE owner_id = ? AND "
                              "study_id = ? ORDER BY trial_id", (owner, name.study_id)).fetchall()
        return [messages.trial_json(study_pb2.Trial.FromString(row[0])) for row in rows]

    def delete_study(self, name: StudyName) -> None:
        """Delete the study, its trials and its operations in one transaction.

        Only for a file no server holds: a running server keeps state of its studies in memory,
        so delete through it instead (the CLI does).
        """
        self.get_study(name)
        owner = names.oss_owner(name.parent)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM studies WHERE study_name = ?", (names.oss_study(name),))
            for table in ("trials", "suggestion_operations", "early_stopping_operations"):
                with contextlib.suppress(sqlite3.OperationalError):  # a table OSS made lazily
                    db.execute(f"DELETE FROM {table} WHERE owner_id = ? AND study_id = ?",
                               (owner, name.study_id))
            db.execute("COMMIT")
        except sqlite3.Error as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise ValidationError("database", self.path, f"cannot be written ({e})") from None
        finally:
            db.close()

    @staticmethod
    def _spec(study: study_pb2.Study) -> Json | None:
        raw = messages.meta(study.study_spec.metadata).get(messages.SPEC_KEY)
        return None if raw is None else dict(json.loads(raw))

    def _study_json(self, study: study_pb2.Study) -> Json:
        spec = self._spec(study)
        if spec is None:
            raise ValidationError("database", self.path,
                                  f"holds study {study.name}, which this service did not make")
        return messages.study_json(study, spec)
