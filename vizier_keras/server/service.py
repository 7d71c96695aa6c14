"""Vertex AI Vizier v1 semantics over Open Source Vizier: one idea, the service's verbs
(storage, names, messages, suggestions and stop state live in their own modules).

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

This module holds the verbs. Its parts: :mod:`.datastore` (OSS's storage), :mod:`.names`
(resource names), :mod:`.messages` (JSON <-> protos), :mod:`.study_state` (when a study is over),
:mod:`.stopping` (early stopping), :mod:`.conditional` (conditional spaces).
"""

from __future__ import annotations

import binascii
import collections
import datetime as dt
import functools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.longrunning import operations_pb2
from vizier._src.service import custom_errors, study_pb2, vizier_service_pb2
from vizier._src.service import resources as oss_resources
from vizier.service import pyvizier as svz

from vizier_keras import pareto, protojson, studyspec, wire
from vizier_keras.errors import (
    AlreadyExistsError,
    ApiError,
    FailedPreconditionError,
    InternalError,
    NotFoundError,
    ValidationError,
)
from vizier_keras.resources import LocationName, OperationName, StudyName, TrialName
from vizier_keras.server import messages, names, policies, stopping, study_state
from vizier_keras.server.datastore import STORAGE_ERRORS, Servicer, SQLDataStore
from vizier_keras.server.suggest import INLINE_WAIT, Suggester
from vizier_keras.wire import Json

logger = logging.getLogger(__name__)

__all__ = ["VizierService"]

_T = TypeVar("_T")

_MAX_PAGE = 1000
MAX_WAIT = 10.0  # seconds an operations.wait request may wait
_MUTABLE = (study_pb2.Trial.State.ACTIVE, study_pb2.Trial.State.STOPPING)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


_Verb = TypeVar("_Verb", bound=Callable[..., Any])


def _storage_errors(verb: _Verb) -> _Verb:
    """A verb whose database failures reach the client as API errors (a full disk is
    RESOURCE_EXHAUSTED, a locked database UNAVAILABLE), with the connection made usable again."""

    @functools.wraps(verb)
    def wrapped(self: VizierService, *args: Any, **kwargs: Any) -> Any:
        try:
            return verb(self, *args, **kwargs)
        except STORAGE_ERRORS as e:
            raise self._ds.storage_error(e) from None

    return wrapped  # type: ignore[return-value]


class VizierService:
    """The embedded Vizier service, in process. Thread-safe; one per database file.

    Args:
        database: Path of the SQLite file (created if missing).
        policy_factory: Builds the Pythia policy for (problem, algorithm, supporter,
            display_name=the study's display name); the default runs the algorithms of
            :mod:`.policies`.
    """

    def __init__(self, database: str | os.PathLike[str], *,
                 policy_factory: Callable[..., Any] = policies.make_policy) -> None:
        self.database = os.path.abspath(os.fspath(database))
        if not os.path.exists(self.database):
            # Studies are the user's data: readable by this user only (SQLite gives its -wal and
            # -shm files the same mode).
            os.close(os.open(self.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._pythia = policies.PythiaService(policy_factory)
        self._servicer = Servicer(
            database_url=f"sqlite:///{self.database}", default_pythia_service=self._pythia)
        self._pythia.connect(self._servicer)
        self._ds = self._servicer.use_datastore(SQLDataStore)
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
        # One lock per study (by OSS name) around every read-modify-write of its trials and
        # operations, ours and OSS's servicer's alike: trials are read afresh under it, so no
        # write is undone by a stale copy and trial ids and budgets cannot race.
        self._study_locks: collections.defaultdict[str, threading.RLock] = (
            collections.defaultdict(threading.RLock))
        self._servicer._study_name_to_lock = self._study_locks
        self._create_lock = threading.Lock()
        self._suggester = Suggester(self._ds, self._pythia, self._study_locks.__getitem__,
                                    self._trial_limit, self._after_batch)
        self._suggester.resume()

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
        return self._guard(lambda: self._ds.load_study(names.oss_study(name)),
                           f"study {name.name}")

    def _load_trial(self, name: TrialName) -> study_pb2.Trial:
        self._load_study(name.study)
        return self._guard(lambda: self._ds.get_trial(names.oss_trial(name)),
                           f"trial {name.name}")

    def _vertex_spec(self, study: study_pb2.Study) -> Json:
        cached = self._specs.get(study.name)
        if cached is not None:
            return cached
        raw = messages.meta(study.study_spec.metadata).get(messages.SPEC_KEY)
        if raw is None:
            raise InternalError(f"study {study.name} was not created by this service")
        spec = self._specs[study.name] = dict(json.loads(raw))
        return spec

    def _study_json(self, study: study_pb2.Study) -> Json:
        return messages.study_json(study, self._vertex_spec(study))

    # ------------------------------------------------------------------ studies

    @_storage_errors
    def create_study(self, parent: LocationName, body: Any) -> Json:
        body = messages.fields("study", body, {"displayName", "studySpec", "name", "state",
                                       "createTime", "inactiveReason"})
        study_in = {k: body[k] for k in ("displayName", "studySpec") if k in body}
        studyspec.validate_study(study_in, "study", allow_extensions=True)
        # Stored as Vertex stores it: proto3 JSON with defaults left out, enums by name.
        spec = protojson.canonical("StudySpec", study_in["studySpec"], path="study.studySpec")
        objectives = [m for m, _ in studyspec.iter_metric_specs(spec)]
        rule = studyspec.stopping_rule(spec)
        if rule is not None and len(objectives) > 1:
            raise ValidationError(f"study.studySpec.{rule}", spec[rule],
                                  "this service's stopping rules read one objective value, as "
                                  f"Vertex AI documents them; the study has {len(objectives)} "
                                  f"({', '.join(objectives)})")
        flat_spec = messages.flat_oss_spec(spec)
        try:
            problem = svz.StudyConfig.from_proto(flat_spec).to_problem()
            policies.check_algorithm(problem, spec.get("algorithm", "ALGORITHM_UNSPECIFIED"))
        except ValueError as e:
            raise ValidationError("study.studySpec.algorithm",
                                  spec.get("algorithm", "ALGORITHM_UNSPECIFIED"), str(e)) from e
        owner = names.oss_owner(parent)
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
            messages.set_meta(study.study_spec.metadata, messages.STATE_KEY,
                              wire.StudyState.ACTIVE.value)
            self._guard(lambda: self._ds.create_study(study), f"study {study_id}")
        logger.info("created study %s (%r)", study.name, study.display_name)
        return self._study_json(study)

    def _studies(self, parent: LocationName) -> list[study_pb2.Study]:
        owner = oss_resources.OwnerResource(names.oss_owner(parent)).name
        try:
            return list(self._ds.list_studies(owner))
        except custom_errors.NotFoundError:
            return []

    @_storage_errors
    def get_study(self, name: StudyName) -> Json:
        return self._study_json(self._load_study(name))

    @_storage_errors
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

    @_storage_errors
    def lookup_study(self, parent: LocationName, body: Any) -> Json:
        body = messages.fields("request", body, {"displayName"})
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            raise ValidationError("displayName", name, "is required")
        for study in self._studies(parent):
            if study.display_name == name:
                return self._study_json(study)
        raise NotFoundError(f"no study with displayName {name!r} in {parent.name}")

    @_storage_errors
    def delete_study(self, name: StudyName) -> Json:
        oss_name = names.oss_study(name)
        with self._study_locks[oss_name]:
            self._guard(lambda: self._ds.delete_study(oss_name), f"study {name.name}")
            self._specs.pop(oss_name, None)
            self._completed_json.pop(oss_name, None)
            self._suggester.forget(oss_name)
        return {}

    @staticmethod
    def _page(items: list[_T], page_size: int | None, page_token: str | None
              ) -> tuple[list[_T], str | None]:
        size = _MAX_PAGE if page_size is None or page_size <= 0 else min(page_size, _MAX_PAGE)
        start = 0
        if page_token:
            try:
                start = int(names.unb64(page_token))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise ValidationError("pageToken", page_token, "is not a token this service "
                                      "gave") from None
            if start < 0:
                raise ValidationError("pageToken", page_token, "is not a token this service "
                                      "gave")
        chunk = items[start:start + size]
        more = start + size < len(items)
        return chunk, names.b64(str(start + size)) if more else None

    # ------------------------------------------------------------------ study state

    def _refresh_state(self, study: study_pb2.Study, trials: list[study_pb2.Trial]) -> str:
        """The study's state after applying its stopping config (stored when it changes)."""
        state = messages.study_state(study)
        if state != wire.StudyState.ACTIVE.value:
            return state
        stopped = study_state.stopped_reason(
            self._vertex_spec(study), study.create_time.ToDatetime(tzinfo=dt.timezone.utc),
            trials, _now())
        if stopped is None:
            return state
        state, reason = stopped
        messages.set_meta(study.study_spec.metadata, messages.STATE_KEY, state)
        messages.set_meta(study.study_spec.metadata, messages.REASON_KEY, reason)
        self._guard(lambda: self._ds.update_study(study), "study")
        logger.info("study %s is now %s: %s", study.name, state, reason)
        return state

    # ------------------------------------------------------------------ suggest

    @_storage_errors
    def suggest_trials(self, study_name: StudyName, body: Any) -> Json:
        body = messages.fields("request", body, {"suggestionCount", "clientId", "contexts"})
        count = body.get("suggestionCount")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError("suggestionCount", count, "must be a positive integer")
        if count > 1000:
            raise ValidationError("suggestionCount", count, "must be at most 1000")
        client_id = body.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise ValidationError("clientId", client_id, "is required")
        if len(client_id) > wire.MAX_ID_LENGTH or "/" in client_id or not client_id.isprintable():
            raise ValidationError("clientId", client_id[:40],
                                  f"must be at most {wire.MAX_ID_LENGTH} printable characters, "
                                  "without '/'")
        if body.get("contexts"):
            raise ValidationError("contexts", body["contexts"],
                                  "contextual suggestions are not supported by this service")
        oss_name = names.oss_study(study_name)
        with self._study_locks[oss_name]:
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
                limit = self._trial_limit(oss_name, trials)
                if limit is not None:
                    budget = min(count, len(mine) + limit)
            if state != wire.StudyState.ACTIVE.value or budget < 1:
                mine = [t for t in self._ds.list_trials(oss_name)
                        if t.state == study_pb2.Trial.State.ACTIVE and t.client_id == client_id]
                op = self._suggester.answer(oss_name, client_id, mine[:count])
                return self._operation_json(study_name, op, study_state=state)
            op = self._suggester.submit(oss_name, client_id, budget)
        if not op.done:
            self._suggester.wait(oss_name, op.name, INLINE_WAIT)
            op = self._guard(lambda: self._ds.get_suggestion_operation(op.name),
                             f"study {study_name.name}")
        return self._operation_json(study_name, op)

    def _trial_limit(self, oss_name: str, trials: list[study_pb2.Trial]) -> int | None:
        """How many more trials the study's maxNumTrials allows (None: no limit)."""
        spec = self._specs.get(oss_name) or self._vertex_spec(self._ds.load_study(oss_name))
        max_trials = (spec.get("studyStoppingConfig") or {}).get("maxNumTrials")
        return None if max_trials is None else max(0, max_trials - len(trials))

    def _after_batch(self, oss_name: str) -> None:
        """A batch of suggestions was made: the study's state may have changed."""
        study = self._ds.load_study(oss_name)
        if self._vertex_spec(study).get("studyStoppingConfig"):
            self._refresh_state(study, list(self._ds.list_trials(oss_name)))

    # ------------------------------------------------------------------ operations

    def _operation_json(self, study_name: StudyName, op: operations_pb2.Operation,
                        study_state: str | None = None) -> Json:
        if study_state is None and op.done and not op.HasField("error"):
            study_state = messages.study_state(self._load_study(study_name))
        return messages.suggest_operation_json(study_name, op, study_state or "")

    @_storage_errors
    def get_operation(self, name: OperationName) -> Json:
        parent = name.parent
        op_id = name.operation_id
        if isinstance(parent, TrialName):
            return self._stop_operation(parent, op_id)
        oss_op = names.oss_suggest_operation(parent, op_id)
        op = self._guard(lambda: self._ds.get_suggestion_operation(oss_op),
                         f"operation {name.name}")
        return self._operation_json(parent, op)

    def wait_operation(self, name: OperationName, timeout: float | None) -> Json:
        """The operation once it is done, or after ``timeout`` seconds, at most
        :data:`MAX_WAIT` (as Vertex, the service may answer before the operation is done: a
        waiting request holds one of the server's few worker threads)."""
        deadline = time.monotonic() + min(MAX_WAIT, MAX_WAIT if timeout is None
                                          else max(timeout, 0.0))
        while True:
            op = self.get_operation(name)
            if op.get("done") or time.monotonic() >= deadline:
                return op
            time.sleep(0.05)

    # ------------------------------------------------------------------ trials

    @_storage_errors
    def create_trial(self, study_name: StudyName, body: Any) -> Json:
        body = messages.fields("trial", body, {"parameters", "name", "id", "state", "clientId",
                                       "startTime", "endTime", "measurements",
                                       "finalMeasurement", "infeasibleReason", "customJob",
                                       "webAccessUris"})
        with self._study_locks[names.oss_study(study_name)]:
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
                parent=names.oss_study(study_name), trial=trial)
            created = self._guard(lambda: self._servicer.CreateTrial(request), "study")
        return messages.trial_json(created)

    def _checked_parameters(self, spec: Mapping[str, Any], raw: Any) -> dict[str, Any]:
        items = raw if isinstance(raw, list) else None
        if items is None:
            raise ValidationError("trial.parameters", raw, "must be a list of "
                                  "{parameterId, value}")
        given: dict[str, Any] = {}
        for i, item in enumerate(items):
            item = messages.fields(f"trial.parameters[{i}]", item, {"parameterId", "value"})
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

    @_storage_errors
    def get_trial(self, name: TrialName) -> Json:
        return messages.trial_json(self._load_trial(name))

    @_storage_errors
    def list_trials(self, study_name: StudyName, page_size: int | None = None,
                    page_token: str | None = None) -> Json:
        self._load_study(study_name)
        trials = sorted(self._ds.list_trials(names.oss_study(study_name)),
                        key=lambda t: int(t.id))
        items, token = self._page(trials, page_size, page_token)
        out: Json = {}
        if items:
            out["trials"] = [messages.trial_json(t) for t in items]
        if token:
            out["nextPageToken"] = token
        return out

    @_storage_errors
    def delete_trial(self, name: TrialName) -> Json:
        self._load_trial(name)
        with self._study_locks[names.oss_study(name.study)]:
            self._guard(lambda: self._ds.delete_trial(names.oss_trial(name)),
                        f"trial {name.name}")
            self._completed_json[names.oss_study(name.study)].pop(names.oss_trial(name), None)
        return {}

    @_storage_errors
    def add_trial_measurement(self, name: TrialName, body: Any) -> Json:
        body = messages.fields("request", body, {"measurement"})
        if "measurement" not in body:
            raise ValidationError("measurement", None, "is required")
        measurement = messages.measurement("measurement", body["measurement"])
        study_lock = self._servicer.study_lock(names.oss_study(name.study))
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
        return messages.trial_json(trial)

    @_storage_errors
    def complete_trial(self, name: TrialName, body: Any) -> Json:
        body = messages.fields("request", body, {"finalMeasurement", "trialInfeasible",
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
            final = messages.measurement("finalMeasurement", body["finalMeasurement"])
        study_name = names.oss_study(name.study)
        with self._servicer.study_lock(study_name):
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
                    final = messages.select_measurement(self._vertex_spec(study), trial)
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
        return messages.trial_json(trial)

    @_storage_errors
    def stop_trial(self, name: TrialName, body: Any) -> Json:
        messages.fields("request", body, set())
        with self._servicer.study_lock(names.oss_study(name.study)):
            trial = self._load_trial(name)
            if trial.state == study_pb2.Trial.State.ACTIVE:
                trial.state = study_pb2.Trial.State.STOPPING
                self._ds.update_trial(trial)
            elif trial.state not in (study_pb2.Trial.State.STOPPING,
                                     study_pb2.Trial.State.SUCCEEDED):
                raise FailedPreconditionError(
                    f"trial {name.name} is {study_pb2.Trial.State.Name(trial.state)}; only an "
                    "ACTIVE trial can be stopped")
        return messages.trial_json(trial)

    @_storage_errors
    def list_optimal_trials(self, study_name: StudyName, body: Any) -> Json:
        """The Pareto-optimal trials (for one objective, those at its best value, ties
        included), by id. Candidates are SUCCEEDED trials whose final measurement holds every
        objective metric and meets every safety threshold (safetyConfig) of the spec; safety
        metrics are constraints, not objectives."""
        messages.fields("request", body, set())
        study = self._load_study(study_name)
        spec = self._vertex_spec(study)
        objectives = list(studyspec.iter_metric_specs(spec))
        candidates: list[study_pb2.Trial] = []
        points: list[list[float]] = []
        for trial in self._ds.list_trials(names.oss_study(study_name)):
            if trial.state != study_pb2.Trial.State.SUCCEEDED:
                continue
            values = {m.metric_id: m.value for m in trial.final_measurement.metrics}
            if any(m not in values for m, _ in objectives) or not studyspec.is_safe(spec,
                                                                                   values):
                continue
            candidates.append(trial)
            points.append(pareto.point(values, objectives))
        front = pareto.pareto_fronts(points)[0] if points else []
        trials = sorted((candidates[i] for i in front), key=lambda t: int(t.id))
        return {"optimalTrials": [messages.trial_json(t) for t in trials]} if trials else {}

    # ------------------------------------------------------------------ early stopping

    @_storage_errors
    def check_trial_early_stopping_state(self, name: TrialName, body: Any) -> Json:
        messages.fields("request", body, set())
        with self._servicer.study_lock(names.oss_study(name.study)):
            study = self._load_study(name.study)
            trial = self._load_trial(name)
            if trial.state not in _MUTABLE:
                raise FailedPreconditionError(
                    f"trial {name.name} is {study_pb2.Trial.State.Name(trial.state)}; only "
                    "ACTIVE or STOPPING trials can be checked")
            if trial.state == study_pb2.Trial.State.STOPPING:
                decision = stopping.Decision(True, "the trial was stopped")
            else:
                oss_study = names.oss_study(name.study)
                known = self._completed_json[oss_study]
                completed = [self._completed_trial_json(known, t)
                             for t in self._ds.list_trials(oss_study)
                             if t.state == study_pb2.Trial.State.SUCCEEDED]
                decision = stopping.decide(self._vertex_spec(study), messages.trial_json(trial),
                                           completed)
            meta = messages.meta(trial.metadata)
            number = int(meta.get("stop-count", "0")) + 1
            op_id = f"{names.STOP_PREFIX}{number}"
            record = {"shouldStop": decision.should_stop, "reason": decision.reason}
            messages.set_meta(trial.metadata, "stop-count", str(number))
            if decision.should_stop and trial.state == study_pb2.Trial.State.ACTIVE:
                messages.set_meta(trial.metadata, messages.STOPPED_KEY, decision.reason)
            messages.set_meta(trial.metadata, op_id, json.dumps(record))
            self._ds.update_trial(trial)
        logger.debug("early-stopping check of %s: %s", name.name, decision)
        return messages.stop_operation_json(name, op_id, record)

    def _completed_trial_json(self, known: dict[str, tuple[tuple[int, int], Json]],
                              trial: study_pb2.Trial) -> Json:
        version = (trial.end_time.seconds, trial.end_time.nanos)
        cached = known.get(trial.name)
        if cached is None or cached[0] != version:
            cached = known[trial.name] = (version, messages.trial_json(trial))
        return cached[1]

    def _stop_operation(self, trial_name: TrialName, op_id: str) -> Json:
        trial = self._load_trial(trial_name)
        raw = (messages.meta(trial.metadata).get(op_id)
               if op_id.startswith(names.STOP_PREFIX) else None)
        if raw is None:
            raise NotFoundError(f"operation {trial_name.name}/operations/{op_id} does not "
                                "exist")
        return messages.stop_operation_json(trial_name, op_id, json.loads(raw))

    # ------------------------------------------------------------------ lifetime

    def check_health(self) -> None:
        """Raise unless the database answers a read."""
        self._ds.ping()

    def close(self) -> None:
        """Stop computing suggestions (unfinished ones resume at the next start) and release
        the database connection."""
        self._suggester.close()
        self._ds.close()
