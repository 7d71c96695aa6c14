"""Vertex AI Vizier v1 semantics over Open Source Vizier.

:class:`VizierService` takes and returns Vertex JSON messages and raises
:mod:`vizier_keras.errors` (the HTTP layer turns them into ``{"error": ...}`` bodies). Open Source
Vizier's ``VizierServicer`` and its SQLite datastore keep the studies, trials and suggestion
operations, assign trials to client ids and run the algorithms; this layer does what OSS does not,
or does differently from Vertex:

* study names in Vertex form with ids assigned by the service; ``create`` with a taken display
  name answers ALREADY_EXISTS; ``lookup`` by display name; study states ACTIVE / INACTIVE /
  COMPLETED, driven by ``studyStoppingConfig``; paged lists;
* every request is checked and a rejected one changes nothing (INVALID_ARGUMENT naming the
  field; FAILED_PRECONDITION for a trial in the wrong state);
* trials get ``endTime``; ``complete`` without a final measurement picks the LAST or BEST
  measurement as ``measurementSelectionType`` says;
* early-stopping checks run the study's median / decay-curve / convex rule
  (:mod:`.stopping`) and answer with an operation;
* conditional search spaces are searched through a flat view (:mod:`.conditional`);
* an algorithm that fails ends its operation with an error, and the client's next suggest works;
  an operation left unfinished by a killed server is ended with UNAVAILABLE when the server
  starts again.

OSS's study record holds a flat StudySpec for the designers; the Vertex StudySpec, the Vertex
study state and the early-stopping results travel in OSS metadata (namespace ``vizier_keras``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.longrunning import operations_pb2
from google.protobuf import json_format
from vizier._src.service import (
    custom_errors,
    key_value_pb2,
    sql_datastore,
    study_pb2,
    vizier_service,
    vizier_service_pb2,
)
from vizier._src.service import resources as oss_resources
from vizier.service import pyvizier as svz

from vizier_keras import studyspec, wire
from vizier_keras.errors import (
    AlreadyExistsError,
    ApiError,
    FailedPreconditionError,
    InternalError,
    NotFoundError,
    ValidationError,
)
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName
from vizier_keras.server import policies, stopping
from vizier_keras.server.conditional import FlatSpace

logger = logging.getLogger(__name__)

__all__ = ["VizierService"]

Json = dict[str, Any]
_T = TypeVar("_T")

TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
_NS = policies.METADATA_NS
_STATE_KEY = "state"
_REASON_KEY = "inactive_reason"
_STOP_PREFIX = "stop-"
_SUGGEST_PREFIX = "suggest-"
_MAX_PAGE = 1000
_OWNER_SEP = "~"
_MUTABLE = (study_pb2.Trial.State.ACTIVE, study_pb2.Trial.State.STOPPING)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _fields(path: str, body: Any, allowed: set[str]) -> Mapping[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ValidationError(path, body, "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"{path}.{unknown[0]}", body[unknown[0]],
                              "is not a field of this message")
    return body


class _SQLDataStore(sql_datastore.SQLDataStore):
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


class _Servicer(vizier_service.VizierServicer):
    """OSS's servicer. This service keeps the Vertex study state itself (OSS's stays ACTIVE), so
    OSS's check, a study read before every mutation, is skipped."""

    def _study_is_immutable(self, study_name: str) -> bool:
        return False


def flat_oss_spec(spec: Mapping[str, Any]) -> study_pb2.StudySpec:
    """The OSS StudySpec the designers see for a Vertex ``spec``: flat parameters, the metrics,
    the algorithm and the Vertex spec as metadata."""
    space = FlatSpace(spec)
    flat: Json = {"metrics": [dict(m) for m in spec["metrics"]],
                  "parameters": space.parameter_specs(),
                  "algorithm": spec.get("algorithm", "ALGORITHM_UNSPECIFIED")}
    if "observationNoise" in spec:
        flat["observationNoise"] = spec["observationNoise"]
    proto = json_format.ParseDict(flat, study_pb2.StudySpec())
    proto.metadata.append(key_value_pb2.KeyValue(
        ns=_NS, key=policies.SPEC_KEY, value=json.dumps(spec, sort_keys=True)))
    return proto


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


class VizierService:
    """The embedded Vizier service, in process. Thread-safe; one per database file.

    Args:
        database: Path of the SQLite file (created if missing).
        policy_factory: Builds the Pythia policy for (problem, algorithm, supporter); the
            default runs the algorithms of :mod:`.policies`.
    """

    def __init__(self, database: str | os.PathLike[str], *,
                 policy_factory: Callable[..., Any] = policies.make_policy) -> None:
        self.database = os.path.abspath(os.fspath(database))
        self._pythia = policies.PythiaService(policy_factory)
        self._servicer = _Servicer(
            database_url=f"sqlite:///{self.database}", default_pythia_service=self._pythia)
        self._pythia.connect(self._servicer)
        # The servicer made an engine (one SQLite connection) for the URL; serve it through the
        # trimmed datastore. (OSS 0.1.24: the datastore owns `_engine` and `_connection`.)
        oss_store = self._servicer.datastore
        oss_store._connection.close()
        self._ds = _SQLDataStore(oss_store._engine)
        self._servicer.datastore = self._ds
        # Vertex StudySpecs by OSS study name. A spec never changes after creation, and this
        # process is the only writer of the file, so the cache cannot go stale.
        self._specs: dict[str, Json] = {}
        # Wire form of SUCCEEDED trials, by OSS study name and then OSS trial name, for
        # early-stopping checks (which read every completed trial of the study on every check;
        # converting them again made a check cost ~0.5 ms per completed trial). A SUCCEEDED
        # trial never changes, but a deleted trial's id can be given again (ids are the highest
        # + 1), and a check may race the deletion: each entry carries its trial's endTime and
        # counts only while that still matches. Entries leave with their trial or study.
        self._completed_json: collections.defaultdict[
            str, dict[str, tuple[tuple[int, int], Json]]] = collections.defaultdict(dict)
        # One lock per study around everything that creates trials or suggestion operations
        # (suggest, create, stopping checks of the study state), so trial ids and study-wide
        # trial budgets cannot race.
        self._study_locks: collections.defaultdict[str, threading.RLock] = (
            collections.defaultdict(threading.RLock))
        self._create_lock = threading.Lock()
        self._end_orphaned_operations()

    # ------------------------------------------------------------------ names

    @staticmethod
    def _owner(parent: LocationName) -> str:
        for field, value in (("project", parent.project), ("location", parent.location)):
            if _OWNER_SEP in value:
                raise ValidationError(field, value, f"must not contain {_OWNER_SEP!r}")
        return f"{parent.project}{_OWNER_SEP}{parent.location}"

    def _oss_study(self, name: StudyName) -> str:
        return oss_resources.StudyResource(self._owner(name.parent), name.study_id).name

    def _oss_trial(self, name: TrialName) -> str:
        try:
            trial_id = int(name.trial_id)
        except ValueError:
            raise NotFoundError(f"trial {name.name} does not exist") from None
        if trial_id <= 0:
            raise NotFoundError(f"trial {name.name} does not exist")
        return oss_resources.TrialResource(self._owner(name.study.parent), name.study_id,
                                           trial_id).name

    @staticmethod
    def _vertex_study_name(oss_name: str) -> StudyName:
        res = oss_resources.StudyResource.from_name(oss_name)
        project, location = res.owner_id.split(_OWNER_SEP, 1)
        return StudyName(project, location, res.study_id)

    # ------------------------------------------------------------------ OSS access

    def _guard(self, call: Callable[[], _T], what: str) -> _T:
        """Run an OSS call, mapping its errors to ours."""
        try:
            return call()
        except ApiError:
            raise
        except custom_errors.NotFoundError as e:
            raise NotFoundError(f"{what} does not exist") from e
        except (custom_errors.ImmutableStudyError, custom_errors.ImmutableTrialError) as e:
            raise FailedPreconditionError(str(e)) from e
        except custom_errors.AlreadyExistsError as e:
            raise AlreadyExistsError(str(e)) from e
        except KeyError as e:
            raise NotFoundError(f"{what} does not exist") from e

    def _load_study(self, name: StudyName) -> study_pb2.Study:
        return self._guard(lambda: self._ds.load_study(self._oss_study(name)),
                           f"study {name.name}")

    def _load_trial(self, name: TrialName) -> study_pb2.Trial:
        self._load_study(name.study)
        return self._guard(lambda: self._ds.get_trial(self._oss_trial(name)),
                           f"trial {name.name}")

    @staticmethod
    def _meta(messages: Any) -> dict[str, str]:
        return {kv.key: kv.value for kv in messages if kv.ns == _NS}

    @staticmethod
    def _set_meta(messages: Any, key: str, value: str) -> None:
        for kv in messages:
            if kv.ns == _NS and kv.key == key:
                kv.value = value
                return
        messages.append(key_value_pb2.KeyValue(ns=_NS, key=key, value=value))

    def _vertex_spec(self, study: study_pb2.Study) -> Json:
        cached = self._specs.get(study.name)
        if cached is not None:
            return cached
        raw = self._meta(study.study_spec.metadata).get(policies.SPEC_KEY)
        if raw is None:
            raise InternalError(f"study {study.name} was not created by this service")
        spec = self._specs[study.name] = dict(json.loads(raw))
        return spec

    def _study_json(self, study: study_pb2.Study) -> Json:
        meta = self._meta(study.study_spec.metadata)
        out: Json = {
            "name": self._vertex_study_name(study.name).name,
            "displayName": study.display_name,
            "studySpec": self._vertex_spec(study),
            "state": meta.get(_STATE_KEY, wire.StudyState.ACTIVE.value),
        }
        if study.HasField("create_time"):
            out["createTime"] = json_format.MessageToDict(study)["createTime"]
        if meta.get(_REASON_KEY):
            out["inactiveReason"] = meta[_REASON_KEY]
        return out

    def _trial_json(self, trial: study_pb2.Trial) -> Json:
        out = json_format.MessageToDict(trial)
        out.pop("metadata", None)
        res = oss_resources.TrialResource.from_name(trial.name)
        project, location = res.owner_id.split(_OWNER_SEP, 1)
        out["name"] = TrialName(project, location, res.study_id, str(res.trial_id)).name
        out["id"] = str(res.trial_id)
        for m in [out.get("finalMeasurement"), *out.get("measurements", [])]:
            if m is not None and m.get("stepCount") in (None, "0"):
                m.pop("stepCount", None)
        return out

    # ------------------------------------------------------------------ studies

    def create_study(self, parent: LocationName, body: Any) -> Json:
        body = _fields("study", body, {"displayName", "studySpec", "name", "state",
                                       "createTime", "inactiveReason"})
        study_in = {k: body[k] for k in ("displayName", "studySpec") if k in body}
        studyspec.validate_study(study_in, "study", allow_extensions=True)
        spec = dict(study_in["studySpec"])
        flat_spec = flat_oss_spec(spec)
        try:
            problem = svz.StudyConfig.from_proto(flat_spec).to_problem()
            policies.check_algorithm(problem, spec.get("algorithm", "ALGORITHM_UNSPECIFIED"))
        except ValueError as e:
            raise ValidationError("study.studySpec.algorithm",
                                  spec.get("algorithm", "ALGORITHM_UNSPECIFIED"), str(e)) from e
        owner = self._owner(parent)
        with self._create_lock:
            existing = self._studies(parent)
            if any(s.display_name == study_in["displayName"] for s in existing):
                raise AlreadyExistsError(
                    f"a study with displayName {study_in['displayName']!r} already exists in "
                    f"{parent.name}")
            taken = {oss_resources.StudyResource.from_name(s.name).study_id for s in existing}
            study_id = str(secrets.randbelow(9 * 10**11) + 10**11)
            while study_id in taken:
                study_id = str(secrets.randbelow(9 * 10**11) + 10**11)
            study = study_pb2.Study(
                name=oss_resources.StudyResource(owner, study_id).name,
                display_name=study_in["displayName"], study_spec=flat_spec,
                state=study_pb2.Study.State.ACTIVE)
            study.create_time.FromDatetime(_now().replace(tzinfo=None))
            self._set_meta(study.study_spec.metadata, _STATE_KEY, wire.StudyState.ACTIVE.value)
            self._guard(lambda: self._ds.create_study(study), f"study {study_id}")
        logger.info("created study %s (%r)", study.name, study.display_name)
        return self._study_json(study)

    def _studies(self, parent: LocationName) -> list[study_pb2.Study]:
        owner = oss_resources.OwnerResource(self._owner(parent)).name
        try:
            return list(self._ds.list_studies(owner))
        except custom_errors.NotFoundError:
            return []

    def get_study(self, name: StudyName) -> Json:
        return self._study_json(self._load_study(name))

    def list_studies(self, parent: LocationName, page_size: int | None = None,
                     page_token: str | None = None) -> Json:
        studies = sorted(self._studies(parent), key=lambda s: (
            s.create_time.seconds, s.create_time.nanos, s.name))
        items, token = self._page(studies, page_size, page_token)
        out: Json = {}
        if items:
            out["studies"] = [self._study_json(s) for s in items]
        if token:
            out["nextPageToken"] = token
        return out

    def lookup_study(self, parent: LocationName, body: Any) -> Json:
        body = _fields("request", body, {"displayName"})
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            raise ValidationError("displayName", name, "is required")
        for study in self._studies(parent):
            if study.display_name == name:
                return self._study_json(study)
        raise NotFoundError(f"no study with displayName {name!r} in {parent.name}")

    def delete_study(self, name: StudyName) -> Json:
        with self._study_locks[name.name]:
            self._guard(lambda: self._ds.delete_study(self._oss_study(name)),
                        f"study {name.name}")
            self._specs.pop(self._oss_study(name), None)
            self._completed_json.pop(self._oss_study(name), None)
        return {}

    @staticmethod
    def _page(items: list[_T], page_size: int | None, page_token: str | None
              ) -> tuple[list[_T], str | None]:
        size = _MAX_PAGE if page_size is None or page_size <= 0 else min(page_size, _MAX_PAGE)
        start = 0
        if page_token:
            try:
                start = int(_unb64(page_token))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationError("pageToken", page_token, "is not a token this service "
                                      "gave") from None
            if start < 0:
                raise ValidationError("pageToken", page_token, "is not a token this service "
                                      "gave")
        chunk = items[start:start + size]
        more = start + size < len(items)
        return chunk, _b64(str(start + size)) if more else None

    # ------------------------------------------------------------------ study state

    def _stopped_reason(self, study: study_pb2.Study, spec: Mapping[str, Any],
                        trials: list[study_pb2.Trial]) -> tuple[str, str] | None:
        """(state, reason) when studyStoppingConfig says the study is over, else None."""
        config = spec.get("studyStoppingConfig")
        if not config:
            return None
        if config.get("shouldStopAsap"):
            return wire.StudyState.INACTIVE.value, "shouldStopAsap is set"
        max_trials = config.get("maxNumTrials")
        if max_trials is not None and len(trials) >= max_trials:
            return (wire.StudyState.COMPLETED.value,
                    f"maxNumTrials ({max_trials}) trials have been created")
        created = study.create_time.ToDatetime(tzinfo=dt.timezone.utc)
        runtime = (config.get("maximumRuntimeConstraint") or {})
        if "maxDuration" in runtime and (
                _now() - created).total_seconds() >= wire.parse_duration(runtime["maxDuration"]):
            return wire.StudyState.COMPLETED.value, "maximumRuntimeConstraint.maxDuration passed"
        if "endTime" in runtime and _now() >= wire.parse_timestamp(runtime["endTime"]):
            return wire.StudyState.COMPLETED.value, "maximumRuntimeConstraint.endTime passed"
        done = [t for t in trials if t.state == study_pb2.Trial.State.SUCCEEDED]
        if len(done) < config.get("minNumTrials", 0):
            return None
        no_progress = config.get("maxNumTrialsNoProgress")
        if no_progress:
            metric = spec["metrics"][0]
            sign = 1.0 if metric["goal"] == "MAXIMIZE" else -1.0
            values = [sign * v for t in sorted(done, key=lambda t: int(t.id))
                      if (v := {m.metric_id: m.value for m in t.final_measurement.metrics}
                          .get(metric["metricId"])) is not None]
            if values:
                best_at = max(range(len(values)), key=lambda i: (values[i], -i))
                if len(values) - 1 - best_at >= no_progress:
                    return (wire.StudyState.COMPLETED.value,
                            f"{no_progress} trials without progress")
        return None

    def _refresh_state(self, study: study_pb2.Study, trials: list[study_pb2.Trial]) -> str:
        """The study's state after applying its stopping config (stored when it changes)."""
        meta = self._meta(study.study_spec.metadata)
        state = meta.get(_STATE_KEY, wire.StudyState.ACTIVE.value)
        if state != wire.StudyState.ACTIVE.value:
            return state
        stopped = self._stopped_reason(study, self._vertex_spec(study), trials)
        if stopped is None:
            return state
        state, reason = stopped
        self._set_meta(study.study_spec.metadata, _STATE_KEY, state)
        self._set_meta(study.study_spec.metadata, _REASON_KEY, reason)
        self._guard(lambda: self._ds.update_study(study), "study")
        logger.info("study %s is now %s: %s", study.name, state, reason)
        return state

    # ------------------------------------------------------------------ suggest

    def suggest_trials(self, study_name: StudyName, body: Any) -> Json:
        body = _fields("request", body, {"suggestionCount", "clientId", "contexts"})
        count = body.get("suggestionCount")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError("suggestionCount", count, "must be a positive integer")
        if count > 1000:
            raise ValidationError("suggestionCount", count, "must be at most 1000")
        client_id = body.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise ValidationError("clientId", client_id, "is required")
        if body.get("contexts"):
            raise ValidationError("contexts", body["contexts"],
                                  "contextual suggestions are not supported by this service")
        oss_name = self._oss_study(study_name)
        with self._study_locks[study_name.name]:
            spec = self._specs.get(oss_name)
            if spec is None:
                spec = self._vertex_spec(self._load_study(study_name))
            stopping_config = spec.get("studyStoppingConfig")
            # Only a stopping config moves a study out of ACTIVE.
            state = wire.StudyState.ACTIVE.value
            budget = count
            if stopping_config:
                study = self._load_study(study_name)
                # Only a study with a stopping config needs its trials read here.
                trials = list(self._ds.list_trials(oss_name))
                mine = [t for t in trials if t.state == study_pb2.Trial.State.ACTIVE
                        and t.client_id == client_id]
                state = self._refresh_state(study, trials)
                max_trials = stopping_config.get("maxNumTrials")
                if max_trials is not None:
                    budget = min(count, len(mine) + max(0, max_trials - len(trials)))
            if state != wire.StudyState.ACTIVE.value or budget < 1:
                mine = [t for t in self._ds.list_trials(oss_name)
                        if t.state == study_pb2.Trial.State.ACTIVE and t.client_id == client_id]
                return self._finished_suggest(study_name, client_id, mine[:count], state)
            request = vizier_service_pb2.SuggestTrialsRequest(
                parent=oss_name, suggestion_count=budget, client_id=client_id)
            began = time.monotonic()
            try:
                operation = self._servicer.SuggestTrials(request)
            except Exception as e:
                logger.exception("suggest failed for %s", oss_name)
                self._fail_open_operations(oss_name, client_id, 13, f"suggest failed: {e}")
                raise InternalError(f"suggest failed: {type(e).__name__}: {e}") from e
            logger.info("suggest for %s (%s) took %.2f s", client_id, study_name.study_id,
                        time.monotonic() - began)
            if stopping_config and operation.done and not operation.HasField("error"):
                self._refresh_state(self._load_study(study_name),
                                    list(self._ds.list_trials(oss_name)))
        return self._operation_json(study_name, operation, study_state=state)

    def _finished_suggest(self, study_name: StudyName, client_id: str,
                          trials: list[study_pb2.Trial], state: str) -> Json:
        """A done suggest operation with no new trial (study over or trial budget spent)."""
        oss_name = self._oss_study(study_name)
        res = oss_resources.StudyResource.from_name(oss_name)
        number = self._guard(lambda: self._max_op_number(oss_name, client_id), "operation") + 1
        op = operations_pb2.Operation(
            name=oss_resources.SuggestionOperationResource(
                res.owner_id, res.study_id, client_id, number).name, done=True)
        response = vizier_service_pb2.SuggestTrialsResponse(trials=trials)
        op.response.value = response.SerializeToString()
        self._ds.create_suggestion_operation(op)
        return self._operation_json(study_name, op, study_state=state)

    def _max_op_number(self, oss_name: str, client_id: str) -> int:
        try:
            return int(self._ds.max_suggestion_operation_number(oss_name, client_id))
        except custom_errors.NotFoundError:
            return 0

    def _fail_open_operations(self, oss_name: str, client_id: str, code: int,
                              message: str) -> None:
        try:
            ops = self._ds.list_suggestion_operations(oss_name, client_id, lambda o: not o.done)
        except custom_errors.NotFoundError:
            return
        for op in ops:
            op.done = True
            op.error.code = code
            op.error.message = message
            self._ds.update_suggestion_operation(op)

    def _end_orphaned_operations(self) -> None:
        """End suggestion operations that a killed server left unfinished.

        Only one server owns a database file, so at start no operation can still be running. OSS
        would hand such an operation back to its client forever.
        """
        table = self._ds._suggestion_operations_table  # OSS 0.1.24's SQL datastore
        with self._ds._lock:
            rows = self._ds._connection.execute(table.select()).fetchall()
        for row in rows:
            op = operations_pb2.Operation.FromString(row.serialized_op)
            if not op.done:
                op.done = True
                op.error.code = 14  # UNAVAILABLE: asking again is safe
                op.error.message = ("the server stopped while this operation ran; "
                                    "suggest again")
                self._ds.update_suggestion_operation(op)
                logger.warning("ended orphaned operation %s", op.name)

    # ------------------------------------------------------------------ operations

    def _operation_json(self, study_name: StudyName, op: operations_pb2.Operation,
                        study_state: str | None = None) -> Json:
        res = oss_resources.SuggestionOperationResource.from_name(op.name)
        op_id = f"{_SUGGEST_PREFIX}{res.operation_number}-{_b64(res.client_id)}"
        out: Json = {
            "name": study_name.operation(op_id).name,
            "metadata": {"@type": TYPE_PREFIX + "SuggestTrialsMetadata",
                         "clientId": res.client_id},
        }
        if not op.done:
            return out
        out["done"] = True
        if op.HasField("error"):
            out["error"] = {"code": op.error.code, "message": op.error.message}
            return out
        response = vizier_service_pb2.SuggestTrialsResponse.FromString(op.response.value)
        if study_state is None:
            study = self._load_study(study_name)
            study_state = self._meta(study.study_spec.metadata).get(
                _STATE_KEY, wire.StudyState.ACTIVE.value)
        body: Json = {"@type": TYPE_PREFIX + "SuggestTrialsResponse", "studyState": study_state}
        if response.trials:
            body["trials"] = [self._trial_json(t) for t in response.trials]
        if response.HasField("start_time"):
            body["startTime"] = json_format.MessageToDict(response)["startTime"]
        out["response"] = body
        return out

    def get_operation(self, name: OperationName) -> Json:
        parent = name.parent
        op_id = name.operation_id
        if isinstance(parent, TrialName):
            return self._stop_operation(parent, op_id)
        if not op_id.startswith(_SUGGEST_PREFIX):
            raise NotFoundError(f"operation {name.name} does not exist")
        try:
            number_text, client = op_id[len(_SUGGEST_PREFIX):].split("-", 1)
            number, client_id = int(number_text), _unb64(client)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise NotFoundError(f"operation {name.name} does not exist") from None
        res = oss_resources.StudyResource.from_name(self._oss_study(parent))
        oss_op = oss_resources.SuggestionOperationResource(
            res.owner_id, res.study_id, client_id, number).name
        op = self._guard(lambda: self._ds.get_suggestion_operation(oss_op),
                         f"operation {name.name}")
        return self._operation_json(parent, op)

    def wait_operation(self, name: OperationName, timeout: float | None) -> Json:
        deadline = time.monotonic() + min(60.0, 60.0 if timeout is None else max(timeout, 0.0))
        while True:
            op = self.get_operation(name)
            if op.get("done") or time.monotonic() >= deadline:
                return op
            time.sleep(0.05)

    # ------------------------------------------------------------------ trials

    def create_trial(self, study_name: StudyName, body: Any) -> Json:
        body = _fields("trial", body, {"parameters", "name", "id", "state", "clientId",
                                       "startTime", "endTime", "measurements",
                                       "finalMeasurement", "infeasibleReason", "customJob",
                                       "webAccessUris"})
        with self._study_locks[study_name.name]:
            study = self._load_study(study_name)
            spec = self._vertex_spec(study)
            values = self._checked_parameters(spec, body.get("parameters"))
            trial = study_pb2.Trial()
            for pid, value in values.items():
                param = trial.parameters.add(parameter_id=pid)
                if isinstance(value, str):
                    param.value.string_value = value
                else:
                    param.value.number_value = float(value)
            request = vizier_service_pb2.CreateTrialRequest(
                parent=self._oss_study(study_name), trial=trial)
            created = self._guard(lambda: self._servicer.CreateTrial(request), "study")
        return self._trial_json(created)

    def _checked_parameters(self, spec: Mapping[str, Any], raw: Any) -> dict[str, Any]:
        items = raw if isinstance(raw, list) else None
        if items is None:
            raise ValidationError("trial.parameters", raw, "must be a list of "
                                  "{parameterId, value}")
        given: dict[str, Any] = {}
        for i, item in enumerate(items):
            item = _fields(f"trial.parameters[{i}]", item, {"parameterId", "value"})
            pid = item.get("parameterId")
            if not isinstance(pid, str) or pid in given:
                raise ValidationError(f"trial.parameters[{i}].parameterId", pid,
                                      "must be a parameter id, once")
            given[pid] = item.get("value")
        typed: dict[str, Any] = {}
        for node in studyspec.parameter_nodes(spec):
            if node.id in given and node.id not in typed:
                typed[node.id] = studyspec.decode_value(
                    node.spec, given[node.id], f"trial.parameters[{node.id!r}]")
        active = studyspec.active_parameters(spec, typed)
        active_ids = {n.id for n in active}
        for pid in given:
            if pid not in active_ids:
                raise ValidationError(f"trial.parameters[{pid!r}]", given[pid],
                                      "is not an active parameter of the study")
        for node in active:
            if node.id not in typed:
                raise ValidationError(f"trial.parameters[{node.id!r}]", None, "is required")
            if not node.feasible(typed[node.id]):
                raise ValidationError(f"trial.parameters[{node.id!r}]", given[node.id],
                                      "is outside the parameter's domain")
        return typed

    def get_trial(self, name: TrialName) -> Json:
        return self._trial_json(self._load_trial(name))

    def list_trials(self, study_name: StudyName, page_size: int | None = None,
                    page_token: str | None = None) -> Json:
        self._load_study(study_name)
        trials = sorted(self._ds.list_trials(self._oss_study(study_name)),
                        key=lambda t: int(t.id))
        items, token = self._page(trials, page_size, page_token)
        out: Json = {}
        if items:
            out["trials"] = [self._trial_json(t) for t in items]
        if token:
            out["nextPageToken"] = token
        return out

    def delete_trial(self, name: TrialName) -> Json:
        self._load_trial(name)
        with self._study_locks[name.study.name]:
            self._guard(lambda: self._ds.delete_trial(self._oss_trial(name)),
                        f"trial {name.name}")
            self._completed_json[self._oss_study(name.study)].pop(self._oss_trial(name), None)
        return {}

    @staticmethod
    def _measurement(path: str, body: Any) -> study_pb2.Measurement:
        body = _fields(path, body, {"stepCount", "elapsedDuration", "metrics"})
        m = study_pb2.Measurement()
        if "stepCount" in body:
            step = wire.parse_int64(body["stepCount"], f"{path}.stepCount")
            if step < 0:
                raise ValidationError(f"{path}.stepCount", body["stepCount"],
                                      "must be non-negative")
            m.step_count = step
        if "elapsedDuration" in body:
            seconds = wire.parse_duration(body["elapsedDuration"], f"{path}.elapsedDuration")
            if seconds < 0:
                raise ValidationError(f"{path}.elapsedDuration", body["elapsedDuration"],
                                      "must be non-negative")
            m.elapsed_duration.FromTimedelta(dt.timedelta(seconds=seconds))
        metrics = body.get("metrics", [])
        if not isinstance(metrics, list):
            raise ValidationError(f"{path}.metrics", metrics, "must be a list")
        seen: set[str] = set()
        for i, metric in enumerate(metrics):
            metric = _fields(f"{path}.metrics[{i}]", metric, {"metricId", "value"})
            mid = wire.check_id(f"{path}.metrics[{i}].metricId", metric.get("metricId"))
            if mid in seen:
                raise ValidationError(f"{path}.metrics[{i}].metricId", mid, "appears twice")
            seen.add(mid)
            value = metric.get("value", 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value)):
                raise ValidationError(f"{path}.metrics[{i}].value", value,
                                      "must be a finite number")
            m.metrics.add(metric_id=mid, value=float(value))
        return m

    def add_trial_measurement(self, name: TrialName, body: Any) -> Json:
        body = _fields("request", body, {"measurement"})
        if "measurement" not in body:
            raise ValidationError("measurement", None, "is required")
        measurement = self._measurement("measurement", body["measurement"])
        study_lock = self._servicer._study_name_to_lock[self._oss_study(name.study)]
        with study_lock:
            trial = self._load_trial(name)
            if trial.state not in _MUTABLE:
                raise FailedPreconditionError(
                    f"trial {name.name} is {study_pb2.Trial.State.Name(trial.state)}; "
                    "measurements can be added to ACTIVE or STOPPING trials only")
            trial.measurements.append(measurement)
            ordered = sorted(trial.measurements, key=lambda x: (
                x.step_count, x.elapsed_duration.ToTimedelta()))
            del trial.measurements[:]
            trial.measurements.extend(ordered)
            self._ds.update_trial(trial)
        return self._trial_json(trial)

    def complete_trial(self, name: TrialName, body: Any) -> Json:
        body = _fields("request", body, {"finalMeasurement", "trialInfeasible",
                                         "infeasibleReason"})
        infeasible = body.get("trialInfeasible", False)
        if not isinstance(infeasible, bool):
            raise ValidationError("trialInfeasible", infeasible, "must be true or false")
        reason = body.get("infeasibleReason", "")
        if not isinstance(reason, str):
            raise ValidationError("infeasibleReason", reason, "must be a string")
        if reason and not infeasible:
            raise ValidationError("infeasibleReason", reason,
                                  "is only for a trial marked trialInfeasible")
        final = None
        if "finalMeasurement" in body and not infeasible:
            final = self._measurement("finalMeasurement", body["finalMeasurement"])
        study_name = self._oss_study(name.study)
        with self._servicer._study_name_to_lock[study_name]:
            study = self._load_study(name.study)
            trial = self._load_trial(name)
            if trial.state not in (*_MUTABLE, study_pb2.Trial.State.REQUESTED):
                raise FailedPreconditionError(
                    f"trial {name.name} is already {study_pb2.Trial.State.Name(trial.state)}")
            if infeasible:
                trial.state = study_pb2.Trial.State.INFEASIBLE
                trial.infeasible_reason = reason
            else:
                if final is None or not final.metrics:
                    final = self._select_measurement(self._vertex_spec(study), trial)
                if final is None:
                    raise FailedPreconditionError(
                        f"trial {name.name} has no measurement to select; send a "
                        "finalMeasurement or mark the trial infeasible")
                trial.final_measurement.CopyFrom(final)
                trial.state = study_pb2.Trial.State.SUCCEEDED
            trial.end_time.FromDatetime(_now().replace(tzinfo=None))
            if not trial.HasField("start_time"):
                trial.start_time.CopyFrom(trial.end_time)
            self._ds.update_trial(trial)
        return self._trial_json(trial)

    @staticmethod
    def _select_measurement(spec: Mapping[str, Any], trial: study_pb2.Trial
                            ) -> study_pb2.Measurement | None:
        candidates = [m for m in trial.measurements if m.metrics]
        if not candidates:
            return None
        if spec.get("measurementSelectionType") != "BEST_MEASUREMENT":
            return candidates[-1]
        metric = spec["metrics"][0]
        sign = 1.0 if metric["goal"] == "MAXIMIZE" else -1.0

        def score(m: study_pb2.Measurement) -> float:
            values = {x.metric_id: x.value for x in m.metrics}
            value = values.get(metric["metricId"])
            return -math.inf if value is None else sign * value

        return max(reversed(candidates), key=score)

    def stop_trial(self, name: TrialName, body: Any) -> Json:
        _fields("request", body, set())
        with self._servicer._study_name_to_lock[self._oss_study(name.study)]:
            trial = self._load_trial(name)
            if trial.state == study_pb2.Trial.State.ACTIVE:
                trial.state = study_pb2.Trial.State.STOPPING
                self._ds.update_trial(trial)
            elif trial.state not in (study_pb2.Trial.State.STOPPING,
                                     study_pb2.Trial.State.SUCCEEDED):
                raise FailedPreconditionError(
                    f"trial {name.name} is {study_pb2.Trial.State.Name(trial.state)}; only an "
                    "ACTIVE trial can be stopped")
        return self._trial_json(trial)

    def list_optimal_trials(self, study_name: StudyName, body: Any) -> Json:
        _fields("request", body, set())
        self._load_study(study_name)
        response = self._guard(lambda: self._servicer.ListOptimalTrials(
            vizier_service_pb2.ListOptimalTrialsRequest(parent=self._oss_study(study_name))),
            f"study {study_name.name}")
        trials = sorted(response.optimal_trials, key=lambda t: int(t.id))
        return {"optimalTrials": [self._trial_json(t) for t in trials]} if trials else {}

    # ------------------------------------------------------------------ early stopping

    def check_trial_early_stopping_state(self, name: TrialName, body: Any) -> Json:
        _fields("request", body, set())
        with self._servicer._study_name_to_lock[self._oss_study(name.study)]:
            study = self._load_study(name.study)
            trial = self._load_trial(name)
            if trial.state not in _MUTABLE:
                raise FailedPreconditionError(
                    f"trial {name.name} is {study_pb2.Trial.State.Name(trial.state)}; only "
                    "ACTIVE or STOPPING trials can be checked")
            if trial.state == study_pb2.Trial.State.STOPPING:
                decision = stopping.Decision(True, "the trial was stopped")
            else:
                oss_study = self._oss_study(name.study)
                known = self._completed_json[oss_study]
                completed = [self._completed_trial_json(known, t)
                             for t in self._ds.list_trials(oss_study)
                             if t.state == study_pb2.Trial.State.SUCCEEDED]
                decision = stopping.decide(self._vertex_spec(study), self._trial_json(trial),
                                           completed)
            meta = self._meta(trial.metadata)
            number = int(meta.get("stop-count", "0")) + 1
            op_id = f"{_STOP_PREFIX}{number}"
            record = {"shouldStop": decision.should_stop, "reason": decision.reason}
            self._set_meta(trial.metadata, "stop-count", str(number))
            self._set_meta(trial.metadata, op_id, json.dumps(record))
            self._ds.update_trial(trial)
        logger.debug("early-stopping check of %s: %s", name.name, decision)
        return self._stop_operation_json(name, op_id, record)

    def _completed_trial_json(self, known: dict[str, tuple[tuple[int, int], Json]],
                              trial: study_pb2.Trial) -> Json:
        version = (trial.end_time.seconds, trial.end_time.nanos)
        cached = known.get(trial.name)
        if cached is None or cached[0] != version:
            cached = known[trial.name] = (version, self._trial_json(trial))
        return cached[1]

    def _stop_operation(self, trial_name: TrialName, op_id: str) -> Json:
        trial = self._load_trial(trial_name)
        raw = self._meta(trial.metadata).get(op_id) if op_id.startswith(_STOP_PREFIX) else None
        if raw is None:
            raise NotFoundError(f"operation {trial_name.name}/operations/{op_id} does not "
                                "exist")
        return self._stop_operation_json(trial_name, op_id, json.loads(raw))

    @staticmethod
    def _stop_operation_json(trial_name: TrialName, op_id: str, record: Mapping[str, Any]
                             ) -> Json:
        response: Json = {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateResponse"}
        if record["shouldStop"]:
            response["shouldStop"] = True
        return {
            "name": trial_name.operation(op_id).name,
            "done": True,
            "metadata": {"@type": TYPE_PREFIX + "CheckTrialEarlyStoppingStateMetatdata",
                         "study": trial_name.study.name, "trial": trial_name.name},
            "response": response,
        }

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the database connection."""
        try:
            self._ds._connection.close()
            self._ds._engine.dispose()
        except Exception:  # closing is best effort
            logger.debug("closing the datastore failed", exc_info=True)

