"""The optimizers the benchmarks compare, each behind the same ask/tell interface.

* ``vizier``: vizier-keras' embedded Vizier service over its REST API, the default algorithm
  (``ALGORITHM_UNSPECIFIED``: Open Source Vizier's GP-UCB-PE as the server runs it). What a
  ``CloudTuner`` without a Google project uses.
* ``vizier-random``: the same service, ``RANDOM_SEARCH``.
* ``oss``: plain Open Source Vizier through its own client (``vizier.service.clients``) and its
  own in-process service, default algorithm.
* ``optuna-tpe``: Optuna's TPE sampler (its defaults; seeded). Since Optuna 5 its default for
  one objective is the multivariate TPE: one joint density over all the parameters.
* ``optuna-tpe-independent``: the same with ``multivariate=False``: one density per parameter,
  as Optuna's default was before version 5 (its other defaults kept; a diagnostic, not a default
  peer).
* ``kt-random`` / ``kt-bo``: KerasTuner's RandomSearch and BayesianOptimization oracles (their
  defaults; seeded, task seed 0 as :data:`KT_SEED_FOR_ZERO`), driven directly (no model is
  built by the oracle).

Every optimizer MINIMIZES the value it is told.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from lib import _common
from lib._common import PARENT

PEERS = ("vizier", "vizier-random", "oss", "optuna-tpe", "optuna-tpe-independent", "kt-random",
         "kt-bo")
KT_SEED_FOR_ZERO = 10_007  # above KerasTuner's own random range (1-10000)


class Optimizer(Protocol):
    def ask(self) -> dict[str, Any]: ...

    def tell(self, values: dict[str, Any], value: float) -> None: ...

    def close(self) -> None: ...


class VizierService:
    """A study on a running Vizier service (the embedded one, at ``endpoint``)."""

    def __init__(self, endpoint: str, space: Any, seed: int, algorithm: str,
                 study_id: str | None = None) -> None:
        import keras_tuner as kt

        from vizier_keras import convert
        from vizier_keras.client import VizierClient

        self._space = space
        self._client = VizierClient(endpoint, timeout=(10, 600))
        spec = convert.study_spec(space, kt.Objective("value", "min"), algorithm=algorithm)
        self._study = self._client.create_study(
            PARENT, study_id or f"bench-{algorithm}-{seed}-{time.time_ns()}", spec)
        self._trial: dict[str, Any] | None = None

    def ask(self) -> dict[str, Any]:
        from vizier_keras import convert

        self._trial = self._client.suggest_trials(self._study, 1, client_id="bench").trials[0]
        return convert.values_from_trial(self._trial, self._space)

    def tell(self, values: dict[str, Any], value: float) -> None:
        assert self._trial is not None
        self._client.complete_trial(self._trial, {"value": value})
        self._trial = None

    def close(self) -> None:
        self._client.close()


def oss_worker_init() -> None:
    """Initialiser of a process that runs the plain-OSS peer: Open Source Vizier's GP (in
    process) fails with TensorFlow imported (TensorFlow Probability then demands ``tf_keras``),
    so Keras, needed only for KerasTuner's HyperParameters there, loads JAX instead. Such a
    process runs the test functions only, never a Keras task."""
    os.environ["KERAS_BACKEND"] = "jax"


def in_pools(target: Callable[[tuple[Any, ...]], Any], jobs: Sequence[tuple[Any, ...]],
             workers: int, oss_workers: int) -> Iterator[Any]:
    """``target(job)`` for each job, results as they come, in spawned processes: ``workers``
    for the jobs whose peer (``job[1]``) is not plain OSS; ``oss_workers`` for those of plain
    OSS, a fresh process per run, set up by ``oss_worker_init``. A fresh process, because OSS
    traces and compiles its GP programs again for every suggestion and keeps them: a process
    doing so reaches Linux's default limit of 65,530 memory maps within about four 30-trial
    runs (LLVM then fails with "Cannot allocate memory" and the worker dies, losing its run)."""
    ctx = mp.get_context("spawn")
    oss = [job for job in jobs if job[1] == "oss"]
    others = [job for job in jobs if job[1] != "oss"]
    with contextlib.ExitStack() as pools:
        pending = []
        if others:
            pool = pools.enter_context(ctx.Pool(workers))
            pending.append(pool.imap_unordered(target, others))
        if oss:
            pool = pools.enter_context(ctx.Pool(oss_workers, oss_worker_init,
                                                maxtasksperchild=1))
            pending.append(pool.imap_unordered(target, oss))
        yield from _common.interleave(pending)


def use_oss_in_process() -> None:
    """Points OSS Vizier's in-process service at a fresh SQLite file (its default file lies in
    site-packages) and polls for suggestions every 10 ms (its default, 1 s, would dominate)."""
    from vizier.service import clients

    clients.environment_variables.servicer_kwargs["database_url"] = (
        f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'oss.db')}")
    clients.environment_variables.new_suggestion_polling_secs = 0.01


class PlainOSS:
    """Open Source Vizier as its users run it: its client and its in-process service."""

    def __init__(self, space: Any, seed: int) -> None:
        from vizier.service import clients
        from vizier.service import pyvizier as ovz

        use_oss_in_process()
        config = ovz.StudyConfig(algorithm="DEFAULT")
        root = config.search_space.root
        for hp in space.space:
            log = getattr(hp, "sampling", None) == "log"
            scale = ovz.ScaleType.LOG if log else ovz.ScaleType.LINEAR
            if type(hp).__name__ == "Int":
                root.add_int_param(hp.name, hp.min_value, hp.max_value, scale_type=scale)
            else:
                root.add_float_param(hp.name, hp.min_value, hp.max_value, scale_type=scale)
        config.metric_information.append(
            ovz.MetricInformation("value", goal=ovz.ObjectiveMetricGoal.MINIMIZE))
        self._study = clients.Study.from_study_config(config, owner="bench",
                                                      study_id=f"s{seed}-{time.time_ns()}")
        self._trial: Any = None

    def ask(self) -> dict[str, Any]:
        self._trial = self._study.suggest(count=1, client_id="bench")[0]
        return {k: v for k, v in self._trial.parameters.items()}

    def tell(self, values: dict[str, Any], value: float) -> None:
        from vizier.service import pyvizier as ovz

        self._trial.complete(ovz.Measurement(metrics={"value": value}))

    def close(self) -> None:
        pass


class OptunaTPE:
    def __init__(self, space: Any, seed: int, multivariate: bool | None = None) -> None:
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():  # giving multivariate warns: experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=multivariate)
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        self._distributions = optuna_distributions(space)
        self._trial: Any = None

    def ask(self) -> dict[str, Any]:
        self._trial = self._study.ask(self._distributions)
        return dict(self._trial.params)

    def tell(self, values: dict[str, Any], value: float) -> None:
        self._study.tell(self._trial, value)

    def close(self) -> None:
        pass


def optuna_distributions(space: Any) -> dict[str, Any]:
    import optuna

    out: dict[str, Any] = {}
    for hp in space.space:
        log = getattr(hp, "sampling", None) == "log"
        kind = type(hp).__name__
        if kind == "Int":
            out[hp.name] = optuna.distributions.IntDistribution(hp.min_value, hp.max_value,
                                                                log=log)
        elif kind == "Float":
            out[hp.name] = optuna.distributions.FloatDistribution(hp.min_value, hp.max_value,
                                                                  log=log)
        elif kind == "Choice":
            out[hp.name] = optuna.distributions.CategoricalDistribution(list(hp.values))
        else:
            raise ValueError(f"no Optuna distribution for {kind} {hp.name!r}")
    return out


class KerasTunerOracle:
    """A KerasTuner oracle driven as a tuner drives it, without building models."""

    def __init__(self, space: Any, seed: int, kind: str, max_trials: int) -> None:
        import keras_tuner as kt

        cls = {"random": kt.oracles.RandomSearchOracle,
               "bo": kt.oracles.BayesianOptimizationOracle}[kind]
        # KerasTuner's Oracle takes ``seed or random.randint(1, 10000)``: a seed of 0 is no
        # seed at all (its runs could not be repeated). 0 maps to a seed that no other task
        # seed reaches; every other seed is passed as it is, as before.
        self._oracle = cls(objective=kt.Objective("value", "min"), max_trials=max_trials,
                           hyperparameters=space.copy(), seed=seed or KT_SEED_FOR_ZERO)
        self._oracle._set_project_dir(tempfile.mkdtemp(), f"kt-{kind}")
        self._trial: Any = None

    def ask(self) -> dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the trial's values
            self._trial = self._oracle.create_trial("bench")
        if self._trial.status != "RUNNING":
            raise RuntimeError(f"KerasTuner oracle gave a {self._trial.status} trial")
        return dict(self._trial.hyperparameters.values)

    def tell(self, values: dict[str, Any], value: float) -> None:
        self._oracle.update_trial(self._trial.trial_id, {"value": value})
        self._trial.status = "COMPLETED"
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a trial summary
            self._oracle.end_trial(self._trial)

    def close(self) -> None:
        pass


def make(peer: str, space: Any, seed: int, max_trials: int, endpoint: str | None = None,
         study_id: str | None = None) -> Optimizer:
    """``peer`` on ``space``; ``study_id`` names the Vizier peers' study (a service started
    with a seed repeats a study's suggestions by its name and trial count)."""
    if peer in ("vizier", "vizier-random"):
        assert endpoint is not None, "the Vizier peers need a running service"
        algorithm = "ALGORITHM_UNSPECIFIED" if peer == "vizier" else "RANDOM_SEARCH"
        return VizierService(endpoint, space, seed, algorithm, study_id)
    if peer == "oss":
        return PlainOSS(space, seed)
    if peer == "optuna-tpe":
        return OptunaTPE(space, seed)
    if peer == "optuna-tpe-independent":
        return OptunaTPE(space, seed, multivariate=False)
    if peer == "kt-random":
        return KerasTunerOracle(space, seed, "random", max_trials)
    if peer == "kt-bo":
        return KerasTunerOracle(space, seed, "bo", max_trials)
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")
