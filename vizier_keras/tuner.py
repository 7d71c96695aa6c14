"""CloudTuner: a KerasTuner Tuner whose oracle asks Vizier for every trial.

Example (no Google account needed: the embedded Vizier service runs in the background)::

    import keras, keras_tuner as kt
    from vizier_keras import CloudTuner

    def build_model(hp):
        model = keras.Sequential([keras.Input((64,))])
        for i in range(hp.Int("num_layers", 1, 3)):
            model.add(keras.layers.Dense(hp.Int(f"units_{i}", 32, 256, step=32),
                                         activation="relu"))
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = CloudTuner(build_model, project_id=None, region=None,
                       objective="val_accuracy", max_trials=20, early_stopping="median",
                       directory="runs", project_name="digits")
    tuner.search(x, y, validation_split=0.2, epochs=10)
    best_model = tuner.get_best_models(1)[0]

On Vertex AI: ``CloudTuner(build_model, project_id="my-project", region="us-central1", ...)``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from typing import Any

import keras
import keras_tuner as kt
from keras_tuner.engine import trial as kt_trial

from vizier_keras import studyspec, wire
from vizier_keras.callbacks import VizierReportingCallback
from vizier_keras.connect import ConnectionOptions
from vizier_keras.errors import ValidationError
from vizier_keras.oracle import ORACLE_ARGS, CloudOracle, safe_tag
from vizier_keras.trials import default_worker_id

logger = logging.getLogger(__name__)

__all__ = ["CloudTuner"]

TrialStatus = kt_trial.TrialStatus


class _FitTimer(keras.callbacks.Callback):
    """Measures time spent inside ``model.fit`` (the rest of a search is tuner overhead)."""

    def __init__(self, totals: dict[str, float]) -> None:
        super().__init__()
        self.totals = totals
        self._began = 0.0

    def on_train_begin(self, logs: Any = None) -> None:
        self._began = time.monotonic()

    def on_train_end(self, logs: Any = None) -> None:
        self.totals["fit_seconds"] += time.monotonic() - self._began


class CloudTuner(kt.Tuner):
    """KerasTuner's ``Tuner``, with Vizier choosing the hyperparameters.

    The signature is that of tensorflow-cloud's ``CloudTuner``; it works against Vertex AI
    Vizier's v1 API, a self-hosted ``vizier-keras serve``, or the embedded service.

    Args:
        hypermodel: A ``keras_tuner.HyperModel``, a ``build_model(hp)`` function, or a
            :func:`vizier_keras.tunable` one.
        project_id: Google Cloud project, or None: then ``$VIZIER_ENDPOINT`` if set, else the
            embedded Vizier service, its database inside the tuner's project directory.
        region: Vertex AI region (default "us-central1" with a project).
        objective: A metric name (direction inferred), a ``keras_tuner.Objective``, or a list
            of them (a multi-objective Vizier study).
        hyperparameters: A ``keras_tuner.HyperParameters`` to start the search space from.
        study_config: A raw Vertex StudySpec dict, instead of objective + hyperparameters.
        max_trials: Trials in the study, counted over every worker.
        study_id: The study's display name (default: ``project_name``). Re-running with the
            same study continues it; a study of that name with another definition is an error.
        **kwargs: KerasTuner's Tuner arguments (``directory``, ``project_name``, ``overwrite``
            (also deletes the study), ``executions_per_trial``, ``max_retries_per_trial``,
            ``max_consecutive_failed_trials``, ``tuner_id``, ``distribution_strategy``, ...)
            and ours: ``endpoint``, ``client``, ``session``, ``credentials``, ``token``,
            ``algorithm``, ``early_stopping`` ("median", "decay_curve", "convex" or a spec
            dict), ``measurement_selection``, ``progress`` (default True: a line per trial with
            the study's progress, whatever ``search(verbose=...)`` says to Keras), ``prefetch``
            (default True: the next trial is
            asked for while one trains) and ``discover_space_builds`` (default 6: extra builds
            with extreme and random values that find hyperparameters declared in loops and
            branches before the study is made).

    Worker ids: ``tuner_id`` or ``$KERASTUNER_TUNER_ID`` when given (stable: a restarted worker
    gets its unfinished trial back), else ``<host>-<pid>``, unique.
    """

    def __init__(
        self,
        hypermodel: Any,
        project_id: str | None,
        region: str | None,
        objective: Any = None,
        hyperparameters: Any = None,
        study_config: dict[str, Any] | None = None,
        max_trials: int | None = None,
        study_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        reach = ConnectionOptions.pop_from(kwargs)
        ours = {k: kwargs.pop(k) for k in ("algorithm", "early_stopping",
                                           "measurement_selection", "prefetch", "progress",
                                           "constraints")
                if k in kwargs}
        oracle_args = {k: kwargs.pop(k) for k in ORACLE_ARGS if k in kwargs}
        self.discover_space_builds = int(kwargs.pop("discover_space_builds", 6))
        tuner_id = kwargs.pop("tuner_id", None) or os.environ.get(
            "KERASTUNER_TUNER_ID") or default_worker_id()
        if not isinstance(tuner_id, str) or not tuner_id.strip():
            raise ValidationError("tuner_id", tuner_id, "must be a non-empty string")
        oracle = CloudOracle(project_id, region, objective, hyperparameters, study_config,
                             max_trials, study_id, overwrite=bool(kwargs.get("overwrite")),
                             **reach.as_kwargs(), **ours, **oracle_args)
        oracle.worker_tag = tuner_id
        # Before BaseTuner.__init__, which looks for this worker's saved state.
        self.tuner_id = tuner_id
        self.search_stats: dict[str, float] = {"search_seconds": 0.0, "fit_seconds": 0.0,
                                               "trials": 0, "stopped_early": 0}
        self._search_began = 0.0
        super().__init__(oracle=oracle, hypermodel=hypermodel, tuner_id=tuner_id, **kwargs)

    # ------------------------------------------------------------------ search space

    def _populate_initial_space(self) -> None:
        super()._populate_initial_space()
        if self.hypermodel is None or self.discover_space_builds <= 0:
            return
        self._discover_space()

    def _discover_space(self) -> None:
        """Build the model with extreme and random values, so that hyperparameters declared in
        loops (``for i in range(hp.Int("layers", 1, 3)): hp.Int(f"units_{i}", ...)``) or in
        branches join the search space before the study is created: a study's space cannot grow
        later."""
        rng = random.Random(0)
        quiet = 0
        for build in range(self.discover_space_builds):
            hp = self.oracle.get_space()
            before = {p.name for p in hp.space}
            values = {}
            for p in hp.space:
                numeric = isinstance(p, (kt.engine.hyperparameters.Int,
                                         kt.engine.hyperparameters.Float))
                choices = [] if numeric else list(p.values)
                ends = (p.min_value, p.max_value) if numeric else (choices[0], choices[-1])
                if build < 2:  # every parameter at its top, then at its bottom
                    values[p.name] = ends[1 - build]
                else:
                    values[p.name] = p.random_sample(rng.randint(0, 2**31))
            hp.values = values
            hp.ensure_active_values()
            try:
                keras.backend.clear_session()
                self.hypermodel.build(hp)
            except Exception as e:  # an extreme combination may not build; that is fine
                logger.debug("discovery build %d failed: %s", build, e)
                continue
            self.oracle.update_space(hp)
            quiet = quiet + 1 if {p.name for p in hp.space} <= before else 0
            if quiet >= 2:
                break
        keras.backend.clear_session()

    # ------------------------------------------------------------------ running trials

    def _try_build(self, hp: Any) -> Any:
        # KerasTuner's own clears the session, which in Keras 3 already runs a full garbage
        # collection, and then collects again: with TensorFlow's heap that second pass costs
        # ~0.3 s per trial on 2 cores, all of it time outside model.fit.
        keras.backend.clear_session()
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.models.Model):
            raise kt.errors.FatalTypeError(
                "Expected the model-building function, or HyperModel.build() to return a valid "
                f"Keras Model instance. Received: {model} of type {type(model)}.")
        if self.max_model_size and model.built:
            size = sum(math.prod(p.shape) for p in model.trainable_weights)
            if size > self.max_model_size:
                raise kt.errors.FailedTrialError(f"Oversized model: {size} parameters. Skip "
                                                 "model.")
        return model

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> list[Any]:
        model_checkpoint = _save_best_epoch(self, trial)
        original_callbacks = kwargs.pop("callbacks", [])
        histories = []
        for execution in range(self.executions_per_trial):
            copied_kwargs = copy.copy(kwargs)
            callbacks = self._deepcopy_callbacks(original_callbacks)
            self._configure_tensorboard_dir(callbacks, trial, execution)
            callbacks.append(_tuner_callback(self, trial))
            callbacks.append(model_checkpoint)
            callbacks.append(_FitTimer(self.search_stats))
            reporter = None
            if execution == 0 and self.oracle.should_report:
                # Measurements and early stopping come from the first execution; later ones
                # only add to the final score.
                reporter = VizierReportingCallback(
                    self.oracle.vizier_trial_name(trial.trial_id), self.oracle.client,
                    objective=self.oracle.metric_ids, complete_on_train_end=False,
                    start_time=self.oracle.trial_started(trial.trial_id))
                callbacks.append(reporter)
            copied_kwargs["callbacks"] = callbacks
            histories.append(self._build_and_fit_model(trial, *args, **copied_kwargs))
            if reporter is not None:
                if reporter.nan_metric is not None:
                    self.oracle.mark_infeasible(trial.trial_id, reporter.nan_metric)
                    break
                if reporter.stopped_early:
                    self.oracle.stopped_early.add(trial.trial_id)
                    self.search_stats["stopped_early"] += 1
                    break
        return histories

    def _configure_tensorboard_dir(self, callbacks: list[Any], trial: Any,
                                   execution: int = 0) -> None:
        # KerasTuner imports tensorboard here on every trial with the TensorFlow backend; only
        # a TensorBoard callback needs it.
        if any(type(c).__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def load_model(self, trial: Any) -> Any:
        checkpoint = self._get_checkpoint_fname(trial.trial_id)
        if not os.path.exists(checkpoint) and not os.path.exists(checkpoint + ".index"):
            raise ValidationError(
                "trial", trial.trial_id,
                f"its weights are not in this tuner's directory ({checkpoint}): the trial was "
                "trained by another worker or machine. Use get_best_hyperparameters() and "
                "train the model again, or give the workers a shared directory.")
        from keras_tuner.src import backend as kt_backend
        from keras_tuner.src.engine.tuner import maybe_distribute

        model = self._try_build(trial.hyperparameters)
        if kt_backend.config.multi_backend() and not model.built:
            import json

            with open(self._get_build_config_fname(trial.trial_id), encoding="utf-8") as f:
                model.build_from_config(json.load(f))
        with maybe_distribute(self.distribution_strategy):
            # The checkpoint holds the optimizer's state too; Keras 3 refuses to load it into
            # an optimizer that has not created its variables yet.
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None and not optimizer.built:
                optimizer.build(model.trainable_variables)
            model.load_weights(checkpoint)
        return model

    # ------------------------------------------------------------------ hooks and reporting

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self._search_began = time.monotonic()

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        self.search_stats["trials"] += 1

    def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs: Any = None) -> None:
        super().on_epoch_end(trial, model, epoch, logs)
        self.oracle.progress.on_epoch_end(trial, epoch, logs)

    def on_search_end(self) -> None:
        super().on_search_end()
        self.search_stats["search_seconds"] += time.monotonic() - self._search_began
        total = self.search_stats["search_seconds"]
        idle = total - self.search_stats["fit_seconds"]
        self.search_stats["suggest_wait_seconds"] = self.oracle.suggest_wait_seconds
        self.search_stats["idle_share"] = idle / total if total > 0 else 0.0
        if self.oracle.progress.enabled:
            print(f"Search done: {int(self.search_stats['trials'])} trials here in "
                  f"{total:.0f} s; {self.search_stats['idle_share']:.0%} of it outside "
                  f"model.fit; {int(self.search_stats['stopped_early'])} stopped early.")
        self.oracle.stop_prefetching()

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best trials of the study (every worker's) as a table: each objective's
        value (and each constraint metric's), and for several objectives the Pareto front each
        trial is on (0: the front); never a sum of objectives."""
        ranked = self.oracle.ranked_best(num_trials)
        spec = self.oracle.study_spec or {}
        objectives = [m for m, _ in studyspec.iter_metric_specs(spec)] or [
            self.oracle.objective.name]
        constraints = [m for m, _, _ in studyspec.safety_metrics(spec)]
        if len(objectives) > 1:
            what = "objectives " + ", ".join(
                f"{m} ({g.value.lower()[:3]})" for m, g in studyspec.iter_metric_specs(spec))
        else:
            what = f"objective {objectives[0]} ({self.oracle.objective.direction})"
        if constraints:
            what += "; constraints " + ", ".join(
                f"{m} {'<=' if g is wire.Goal.MINIMIZE else '>='} {t:g}"
                for m, g, t in studyspec.safety_metrics(spec))
        print(f"Results summary: study {self.oracle.study_id or self.project_name}, {what}")
        if not ranked:
            print("  no completed trial yet")
            return
        names = sorted({k for t, _, _ in ranked for k in t.hyperparameters.values})
        front = ["front"] if len(objectives) > 1 else []
        header = ["rank", "trial", *front, *objectives, *constraints, *names]
        rows = []
        for rank, (trial, metrics, on_front) in enumerate(ranked, start=1):
            row = [str(rank), str(trial.trial_id), *([str(on_front)] if front else [])]
            for metric in [*objectives, *constraints]:
                value = metrics.get(metric, trial.score if metric == objectives[0] else None)
                row.append("-" if value is None else f"{value:.5g}")
            for name in names:
                value = trial.hyperparameters.values.get(name, "")
                row.append(f"{value:.4g}" if isinstance(value, float) else str(value))
            rows.append(row)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                             strict=True)))

    def results(self) -> Any:
        """The study's results as data (every worker's trials), read now: a
        :class:`vizier_keras.results.StudyResults`, with ``trials_dataframe()``,
        ``measurements_dataframe()`` and ``best_trials(n)``.

        Raises:
            ValidationError: The study does not exist yet (nothing was searched).
        """
        from vizier_keras.results import ServiceSource, StudyResults

        study = self.oracle.existing_study()
        if study is None:
            raise ValidationError("study", self.oracle.study_id or self.project_name,
                                  "does not exist yet: run search() first")
        source = ServiceSource(self.oracle.client, self.oracle.connection.parent, owned=False)
        return StudyResults(study, source=source).refresh()

    def _get_tuner_fname(self) -> str:
        # One file per worker: workers of a job may share the project directory.
        return os.path.join(str(self.project_dir), f"tuner_{safe_tag(self.tuner_id)}.json")


def _tuner_callback(tuner: CloudTuner, trial: Any) -> Any:
    from keras_tuner.src.engine import tuner_utils

    return tuner_utils.TunerCallback(tuner, trial)


def _save_best_epoch(tuner: CloudTuner, trial: Any) -> Any:
    from keras_tuner.src.engine import tuner_utils

    return tuner_utils.SaveBestEpoch(objective=tuner.oracle.objective,
                                     filepath=tuner._get_checkpoint_fname(trial.trial_id))
