"""The suggest path: suggestions as long-running operations, computed in the background and
batched per study.

A suggest request is answered at once with its operation (after waiting at most
:data:`INLINE_WAIT` seconds, so that a quick algorithm answers done in one round trip). Under the
study's lock, :meth:`Suggester.submit`:

1. returns the client's unfinished operation if it has one: asking again, after a timeout or a
   restart, never starts a second computation;
2. answers from the client's ACTIVE trials, then from REQUESTED ones (added with createTrial),
   when they are enough;
3. otherwise stores the operation unfinished, with the request in its metadata, and wakes the
   study's worker.

The worker takes every unfinished operation of its study as one batch: GP-UCB-PE is made for
batches (the trials in flight feed its pure-exploration part). It computes the suggestions
outside the lock, so measurements and completions go on meanwhile; then, under the lock, it
creates the trials, hands each operation its own and marks it done. Requests that arrive
during a computation form the next batch. An algorithm that fails ends every operation of its
batch with INTERNAL; the clients may ask again.

Every trial write of the service holds the study's lock (the one OSS's servicer takes too), and
trials are read afresh under it, so a completed trial is never handed out again and an
acknowledged write is never undone. Unfinished operations are in the database: a server that
starts resumes them, so a client that holds one gets its trials after a restart too.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2
from vizier import pyvizier as vz
from vizier._src.service import custom_errors, study_pb2, vizier_service_pb2
from vizier._src.service import resources as oss_resources
from vizier.service import pyvizier as svz

from vizier_keras.errors import ResourceExhaustedError
from vizier_keras.server.datastore import STORAGE_ERRORS, SQLDataStore

logger = logging.getLogger(__name__)

__all__ = ["INLINE_WAIT", "MAX_PENDING", "Suggester"]

# How long a suggest request waits for its computation before it answers with the unfinished
# operation (random search takes a few milliseconds; the GP takes about a second).
INLINE_WAIT = 0.05
# Unfinished operations one study may hold; more are refused with RESOURCE_EXHAUSTED.
MAX_PENDING = 256

_ACTIVE = study_pb2.Trial.State.ACTIVE
_REQUESTED = study_pb2.Trial.State.REQUESTED
INTERNAL, UNAVAILABLE = 13, 14


def _timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    return stamp


class Suggester:
    """Suggestion operations of every study of one database (see the module docstring).

    Args:
        datastore: The service's datastore.
        pythia: Computes suggestions (``Suggest(SuggestRequest proto)``); raises on failure.
        study_lock: The lock of a study by OSS name; every trial write holds it.
        trial_limit: How many more trials a study may get (None: no limit), given its spec's
            stopping config and its trials.
        after_batch: Called with the OSS study name, under its lock, after a batch created
            trials (the service updates the study's state).
    """

    def __init__(self, datastore: SQLDataStore, pythia: Any,
                 study_lock: Callable[[str], Any],
                 trial_limit: Callable[[str, list[study_pb2.Trial]], int | None],
                 after_batch: Callable[[str], None]) -> None:
        self._ds = datastore
        self._pythia = pythia
        self._study_lock = study_lock
        self._trial_limit = trial_limit
        self._after_batch = after_batch
        # Unfinished operations by OSS study name, oldest first: operation name -> request.
        self._pending: collections.defaultdict[
            str, dict[str, vizier_service_pb2.SuggestTrialsRequest]] = (
            collections.defaultdict(dict))
        self._workers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._closed = False

    # ------------------------------------------------------------------ requests

    def submit(self, oss_name: str, client_id: str, count: int) -> operations_pb2.Operation:
        """The operation that answers ``client_id``'s request for ``count`` trials.

        Call with the study's lock held.

        Raises:
            ResourceExhaustedError: The study already holds :data:`MAX_PENDING` unfinished
                operations.
        """
        try:
            unfinished = self._ds.list_suggestion_operations(oss_name, client_id,
                                                             lambda o: not o.done)
        except custom_errors.NotFoundError:
            unfinished = []
        if unfinished:
            return unfinished[0]
        request = vizier_service_pb2.SuggestTrialsRequest(
            parent=oss_name, suggestion_count=count, client_id=client_id)
        mine = self._take(self._ds.list_trials(oss_name), request)
        if len(mine) >= count:
            return self.answer(oss_name, client_id, mine[:count])
        op = operations_pb2.Operation(name=self._new_operation_name(oss_name, client_id))
        with self._lock:
            if len(self._pending[oss_name]) >= MAX_PENDING:
                raise ResourceExhaustedError(
                    f"{MAX_PENDING} suggest operations of this study are waiting already; "
                    "ask again later")
        op.metadata.Pack(request)
        self._ds.create_suggestion_operation(op)
        self._enqueue(oss_name, op.name, request)
        return op

    def answer(self, oss_name: str, client_id: str,
               trials: list[study_pb2.Trial]) -> operations_pb2.Operation:
        """A new operation of ``client_id``, done, that answers with ``trials``. Call with the
        study's lock held."""
        op = operations_pb2.Operation(name=self._new_operation_name(oss_name, client_id))
        self._finish(op, trials, create=True)
        return op

    def wait(self, oss_name: str, op_name: str, timeout: float) -> None:
        """Return when the operation is done, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._done:
            while op_name in self._pending.get(oss_name, {}):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._done.wait(remaining)

    def resume(self) -> None:
        """Take up the operations a stopped server left unfinished (call once, at start).

        Those that carry their request are computed again; any other is ended with
        UNAVAILABLE, which tells its client to ask again.
        """
        request = vizier_service_pb2.SuggestTrialsRequest()
        for op in self._ds.unfinished_suggestion_operations():
            if op.metadata.Is(request.DESCRIPTOR) and op.metadata.Unpack(request):
                logger.info("resuming suggest operation %s", op.name)
                self._enqueue(request.parent, op.name, request)
                request = vizier_service_pb2.SuggestTrialsRequest()
                continue
            op.done = True
            op.error.code = UNAVAILABLE
            op.error.message = "the server stopped while this operation ran; suggest again"
            self._ds.update_suggestion_operation(op)
            logger.warning("ended orphaned operation %s", op.name)

    def forget(self, oss_name: str) -> None:
        """Drop a deleted study's unfinished operations."""
        with self._done:
            self._pending.pop(oss_name, None)
            self._done.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking batches; wait up to ``timeout`` for the running ones. Unfinished
        operations stay in the database for the next start."""
        with self._lock:
            self._closed = True
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ the worker

    def _enqueue(self, oss_name: str, op_name: str,
                 request: vizier_service_pb2.SuggestTrialsRequest) -> None:
        with self._lock:
            self._pending[oss_name][op_name] = request
            if self._closed or oss_name in self._workers:
                return
            worker = threading.Thread(target=self._work, args=(oss_name,), daemon=True,
                                      name=f"vizier-suggest-{oss_name.rsplit('/', 1)[-1]}")
            self._workers[oss_name] = worker
        worker.start()

    def _work(self, oss_name: str) -> None:
        try:
            while True:
                with self._study_lock(oss_name), self._lock:
                    batch = dict(self._pending.get(oss_name, {}))
                    if not batch or self._closed:
                        self._workers.pop(oss_name, None)
                        return
                self._run_batch(oss_name, batch)
        except Exception as e:  # the database failed, or a bug: end the batch's operations
            logger.exception("the suggest worker of %s failed", oss_name)
            message = "the suggest worker failed; suggest again"
            if isinstance(e, STORAGE_ERRORS):
                message = f"{self._ds.storage_error(e)}; suggest again"
            with self._lock:
                self._workers.pop(oss_name, None)
                batch = dict(self._pending.get(oss_name, {}))
            for op_name in batch:
                try:
                    self._fail(oss_name, op_name, INTERNAL, message)
                except Exception:  # still failing: the operation stays for the next start
                    logger.exception("could not end operation %s", op_name)

    def _run_batch(self, oss_name: str,
                   batch: Mapping[str, vizier_service_pb2.SuggestTrialsRequest]) -> None:
        # 1. Under the lock: serve what existing trials can serve, count what is missing.
        with self._study_lock(oss_name):
            try:
                study = self._ds.load_study(oss_name)
                trials = self._ds.list_trials(oss_name)
            except custom_errors.NotFoundError:
                self.forget(oss_name)
                return
            limit = self._trial_limit(oss_name, trials)
            needs: dict[str, int] = {}
            for op_name, request in batch.items():
                mine = self._take(trials, request)
                need = request.suggestion_count - len(mine)
                if limit is not None:
                    need = min(need, limit)
                    limit -= max(need, 0)
                if need <= 0:
                    self._finish_pending(oss_name, op_name, mine[:request.suggestion_count])
                else:
                    needs[op_name] = need
            max_trial_id = self._ds.max_trial_id(oss_name)
        if not needs:
            return
        # 2. Outside the lock: the algorithm, once for the whole batch.
        began = time.monotonic()
        total = sum(needs.values())
        try:
            suggestions, metadata = self._compute(study, oss_name, max_trial_id, total)
        except Exception as e:
            message = str(e) or type(e).__name__
            for op_name in needs:
                self._fail(oss_name, op_name, INTERNAL, f"suggest failed: {message}")
            return
        logger.info("suggested %d trial(s) for %d request(s) of %s in %.2f s", total,
                    len(needs), oss_name, time.monotonic() - began)
        # 3. Under the lock: the new trials, each operation its own. A server that is closing
        # writes nothing more: the operations stay unfinished, for the next start to resume.
        with self._study_lock(oss_name):
            if self._closed:
                return
            try:
                self._ds.update_metadata(oss_name, *metadata)
            except (KeyError, custom_errors.NotFoundError):
                logger.warning("a trial the algorithm annotated is gone", exc_info=True)
            start = _timestamp()
            res = oss_resources.StudyResource.from_name(oss_name)
            for op_name, need in needs.items():
                request = batch[op_name]
                for trial in suggestions[:need]:
                    trial_id = self._ds.max_trial_id(oss_name) + 1
                    trial.id = str(trial_id)
                    trial.name = oss_resources.TrialResource(
                        res.owner_id, res.study_id, trial_id).name
                    trial.state = _ACTIVE
                    trial.client_id = request.client_id
                    trial.start_time.CopyFrom(start)
                    self._ds.create_trial(trial)
                del suggestions[:need]
                mine = sorted((t for t in self._ds.list_trials(oss_name)
                               if t.state == _ACTIVE and t.client_id == request.client_id),
                              key=lambda t: int(t.id))
                self._finish_pending(oss_name, op_name, mine[:request.suggestion_count])
            self._after_batch(oss_name)

    def _compute(self, study: study_pb2.Study, oss_name: str, max_trial_id: int,
                 count: int) -> tuple[list[study_pb2.Trial], tuple[Any, Any]]:
        from vizier import pythia

        config = svz.StudyConfig.from_proto(study.study_spec)
        request = pythia.SuggestRequest(
            study_descriptor=vz.StudyDescriptor(config=config, guid=oss_name,
                                                max_trial_id=max_trial_id),
            count=count)
        proto = svz.SuggestConverter.to_request_proto(request)
        proto.algorithm = study.study_spec.algorithm
        decision = svz.SuggestConverter.from_decision_proto(self._pythia.Suggest(proto))
        metadata = (svz.metadata_util.make_key_value_list(decision.metadata.on_study),
                    svz.metadata_util.trial_metadata_to_update_list(decision.metadata.on_trials))
        trials = svz.TrialConverter.to_protos([s.to_trial() for s in decision.suggestions])
        return list(trials), metadata

    # ------------------------------------------------------------------ trials and operations

    def _take(self, trials: list[study_pb2.Trial],
              request: vizier_service_pb2.SuggestTrialsRequest) -> list[study_pb2.Trial]:
        """The client's ACTIVE trials, topped up from the REQUESTED ones, which become the
        client's (they exist already, so no trial budget is spent on them). ``trials`` is
        updated in place. Call under the study's lock."""
        mine = sorted((t for t in trials if t.state == _ACTIVE
                       and t.client_id == request.client_id), key=lambda t: int(t.id))
        requested = sorted((t for t in trials if t.state == _REQUESTED), key=lambda t: int(t.id))
        start = _timestamp()
        for trial in requested:
            if len(mine) >= request.suggestion_count:
                break
            trial.state = _ACTIVE
            trial.client_id = request.client_id
            trial.start_time.CopyFrom(start)
            self._ds.update_trial(trial)
            mine.append(trial)
        return mine

    def _finish(self, op: operations_pb2.Operation, trials: list[study_pb2.Trial], *,
                create: bool) -> None:
        op.done = True
        op.response.value = vizier_service_pb2.SuggestTrialsResponse(
            trials=trials, start_time=_timestamp()).SerializeToString()
        if create:
            self._ds.create_suggestion_operation(op)
        else:
            self._ds.update_suggestion_operation(op)

    def _finish_pending(self, oss_name: str, op_name: str,
                        trials: list[study_pb2.Trial]) -> None:
        op = self._ds.get_suggestion_operation(op_name)
        self._finish(op, trials, create=False)
        self._settle(oss_name, op_name)

    def _fail(self, oss_name: str, op_name: str, code: int, message: str) -> None:
        try:
            op = self._ds.get_suggestion_operation(op_name)
            op.done = True
            op.error.code = code
            op.error.message = message
            self._ds.update_suggestion_operation(op)
        except custom_errors.NotFoundError:
            pass
        self._settle(oss_name, op_name)

    def _settle(self, oss_name: str, op_name: str) -> None:
        with self._done:
            self._pending.get(oss_name, {}).pop(op_name, None)
            self._done.notify_all()

    def _new_operation_name(self, oss_name: str, client_id: str) -> str:
        try:
            number = int(self._ds.max_suggestion_operation_number(oss_name, client_id))
        except custom_errors.NotFoundError:
            number = 0
        res = oss_resources.StudyResource.from_name(oss_name)
        return oss_resources.SuggestionOperationResource(
            res.owner_id, res.study_id, client_id, number + 1).name
