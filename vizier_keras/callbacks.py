"""VizierReportingCallback: stream epoch metrics to Vizier, stop ``fit`` when Vizier says so.

The training thread never waits on the network: each epoch's measurement goes to a background
thread that sends it (``addTrialMeasurement``) and asks whether to stop
(``checkTrialEarlyStoppingState``); the answer is applied at the next epoch's end (at once with
``blocking=True``). The time the callback takes on the training thread is kept in
:attr:`VizierReportingCallback.stats`.

In a plain training script::

    trial = vizier_keras.suggest_trial("my-study", objective="val_accuracy",
                                       hyperparameters=hp)
    with trial:
        model = build(**trial.parameters)
        model.fit(x, y, validation_split=0.2, epochs=20,
                  callbacks=[vizier_keras.VizierReportingCallback(trial)])
    # the trial is completed at the end of fit (infeasible if fit raised)

``CloudTuner`` adds one to every trial itself.
"""

from __future__ import annotations

import copy
import logging
import math
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

import keras
from keras_tuner import errors as kt_errors

from vizier_keras.errors import ValidationError, VizierError

logger = logging.getLogger(__name__)

__all__ = ["VizierReportingCallback", "VizierUnreachableError"]

_STOP = object()


class _Reporter:
    """The background sender of one training run's measurements."""

    def __init__(self, client: Any, trial_name: str, check: bool) -> None:
        self.client = client
        self.trial_name = trial_name
        self.check = check
        self.should_stop = False
        self.error: BaseException | None = None
        self.sent = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vizier-reporter", daemon=True)
        self._thread.start()

    def submit(self, metrics: dict[str, float], step: int, elapsed: float) -> None:
        self._queue.put((metrics, step, elapsed))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                self._queue.task_done()
                return
            try:
                if self.error is not None:
                    continue
                metrics, step, elapsed = job
                self.client.add_trial_measurement(self.trial_name, metrics, step_count=step,
                                                  elapsed_seconds=elapsed)
                self.sent += 1
                if self.check and self.client.check_trial_early_stopping_state(
                        self.trial_name):
                    self.should_stop = True
            except BaseException as e:  # kept, and raised on the training thread
                self.error = e
            finally:
                self._queue.task_done()

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted measurement is handled; False if time ran out."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self._queue.put(_STOP)


class VizierReportingCallback(keras.callbacks.Callback):
    """Reports each epoch's metrics to a Vizier trial and stops training when Vizier says so.

    Args:
        trial: A :class:`vizier_keras.VizierTrial` (from :func:`vizier_keras.suggest_trial`),
            or a trial's resource name together with ``client``.
        client: A :class:`vizier_keras.VizierClient` (default: the trial's).
        metrics: The log keys to report (default: every finite number in the epoch's logs).
        objective: Metric names whose NaN or infinite value makes the trial infeasible and stops
            training (default: the trial's study metrics, else ``loss`` and ``val_loss``).
        check_early_stopping: Ask Vizier after each measurement whether to stop.
        complete_on_train_end: Complete the trial when ``fit`` ends: infeasible if the
            objective went NaN, else scored by the study's measurement selection (LAST or BEST).
            ``CloudTuner`` completes its trials itself and turns this off.
        blocking: Send and check on the training thread (exact, slower); default: in the
            background.
        start_time: ``time.monotonic()`` at which the trial started (for ``elapsedDuration``);
            default: the start of ``fit``.
        flush_timeout: Seconds to wait at the end of ``fit`` for measurements still in flight.

    Attributes:
        stopped_early: Whether Vizier stopped the training.
        nan_metric: "name at epoch N" when an objective metric went NaN or infinite, else None.
        stats: ``epochs``; ``training_thread_seconds``, the callback's whole time on the
            training thread, of which ``end_of_fit_seconds`` is the wait at the end of ``fit``
            for measurements still in flight (once per fit, not per epoch);
            ``measurements_sent``.
    """

    def __init__(
        self,
        trial: Any,
        client: Any = None,
        *,
        metrics: Iterable[str] | None = None,
        objective: Iterable[str] | None = None,
        check_early_stopping: bool = True,
        complete_on_train_end: bool = True,
        blocking: bool = False,
        start_time: float | None = None,
        flush_timeout: float = 120.0,
    ) -> None:
        super().__init__()
        name = getattr(trial, "name", trial)
        if isinstance(trial, dict):
            name = trial.get("name")
        if not isinstance(name, str) or "/trials/" not in name:
            raise ValidationError("trial", trial, "must be a VizierTrial, a Trial message or a "
                                  "trial's resource name")
        self.trial = trial
        self.trial_name = name
        self.client: Any = client if client is not None else getattr(trial, "client", None)
        if self.client is None:
            raise ValidationError("client", None, "give a client, or a VizierTrial (which "
                                  "carries one)")
        self.metrics = None if metrics is None else list(metrics)
        objective = objective if objective is not None else getattr(trial, "metric_ids", None)
        self.objective = list(objective) if objective is not None else ["loss", "val_loss"]
        self.check_early_stopping = check_early_stopping
        self.complete_on_train_end = complete_on_train_end
        self.blocking = blocking
        self.start_time = start_time
        self.flush_timeout = flush_timeout
        self.stopped_early = False
        self.nan_metric: str | None = None
        self.stats: dict[str, float] = _new_stats()
        self._reporter: _Reporter | None = None
        self._started = 0.0

    def __deepcopy__(self, memo: dict[int, Any]) -> VizierReportingCallback:
        # KerasTuner deep-copies the callbacks given to search() for every execution. The
        # client, its session and the trial are shared, not copied; each copy reports anew.
        clone = copy.copy(self)
        clone.metrics = None if self.metrics is None else list(self.metrics)
        clone.objective = list(self.objective)
        clone.stats = _new_stats()
        clone.stopped_early = False
        clone.nan_metric = None
        clone._reporter = None
        memo[id(self)] = clone
        return clone

    # ------------------------------------------------------------------ Keras hooks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = self.start_time if self.start_time is not None else time.monotonic()
        if not self.blocking:
            self._reporter = _Reporter(self.client, self.trial_name, self.check_early_stopping)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        began = time.perf_counter()
        try:
            self._on_epoch_end(epoch, logs or {})
        finally:
            self.stats["training_thread_seconds"] += time.perf_counter() - began
            self.stats["epochs"] += 1

    def _on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._raise_background_error()
        values: dict[str, float] = {}
        for key, raw in logs.items():
            if self.metrics is not None and key not in self.metrics:
                continue
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                values[key] = value
            elif key in self.objective and self.nan_metric is None:
                self.nan_metric = f"{key} was {value} at epoch {epoch + 1}"
        if self.nan_metric is not None:
            logger.warning("trial %s: %s; stopping", self.trial_name, self.nan_metric)
            self.model.stop_training = True
            return
        if not values:
            return
        elapsed = time.monotonic() - self._started
        if self._reporter is None:
            self.client.add_trial_measurement(self.trial_name, values, step_count=epoch + 1,
                                              elapsed_seconds=elapsed)
            self.stats["measurements_sent"] += 1
            if self.check_early_stopping and self.client.check_trial_early_stopping_state(
                    self.trial_name):
                self._stop(epoch)
            return
        self._reporter.submit(values, epoch + 1, elapsed)
        if self._reporter.should_stop:
            self._stop(epoch)

    def _stop(self, epoch: int) -> None:
        if not self.stopped_early:
            logger.info("trial %s: Vizier stopped it after epoch %d", self.trial_name, epoch + 1)
        self.stopped_early = True
        self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        began = time.perf_counter()
        try:
            self._finish()
        finally:
            took = time.perf_counter() - began
            self.stats["training_thread_seconds"] += took
            self.stats["end_of_fit_seconds"] += took

    def _finish(self) -> None:
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            if not reporter.flush(self.flush_timeout):
                logger.warning("trial %s: measurements still unsent after %.0f s",
                               self.trial_name, self.flush_timeout)
            reporter.close()
            self.stats["measurements_sent"] += reporter.sent
            if reporter.should_stop:
                self.stopped_early = True
            if reporter.error is not None:
                raise _as_error(reporter.error)
        if self.complete_on_train_end:
            complete = getattr(self.trial, "complete", None)
            if self.nan_metric is not None:
                reason = f"{self.nan_metric}"
                if complete is not None:
                    complete(infeasible_reason=reason)
                else:
                    self.client.complete_trial(self.trial_name, infeasible_reason=reason)
            elif complete is not None:
                complete()
            else:
                self.client.complete_trial(self.trial_name)

    def _raise_background_error(self) -> None:
        if self._reporter is not None and self._reporter.error is not None:
            error, self._reporter.error = self._reporter.error, None
            raise _as_error(error)


class VizierUnreachableError(VizierError, kt_errors.FatalError):
    """The Vizier service failed while a trial trained. A ``keras_tuner.errors.FatalError``: it
    ends the search instead of failing one trial after another.

    Attributes:
        error: The service's error (Keras' traceback filtering drops ``__cause__``).
    """

    def __init__(self, error: VizierError) -> None:
        super().__init__(f"reporting to Vizier failed: {error}")
        self.error = error


def _new_stats() -> dict[str, float]:
    return {"epochs": 0, "training_thread_seconds": 0.0, "end_of_fit_seconds": 0.0,
            "measurements_sent": 0}


def _as_error(error: BaseException) -> BaseException:
    if isinstance(error, VizierError):
        wrapped = VizierUnreachableError(error)
        wrapped.__cause__ = error
        return wrapped
    return error
