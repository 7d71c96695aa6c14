"""Search algorithms of the embedded service: names, Pythia policies, and the wrappers that make
them safe (errors end the operation) and conditional-aware (flat space in, active parameters
out).

==========================  =====================================================================
``algorithm``               Policy (Open Source Vizier)
==========================  =====================================================================
ALGORITHM_UNSPECIFIED       GP-UCB-PE, OSS's default, configured for speed, five seed trials,
                            UCB coefficient 1.0, every second suggestion near the best trial
                            (:func:`.gp.service_designer`)
GRID_SEARCH                 grid search (continuous parameters are discretised by OSS)
RANDOM_SEARCH               uniform random search
GAUSSIAN_PROCESS_BANDIT     GP bandit with UCB (OSS ``VizierGPBandit``)
QUASI_RANDOM_SEARCH         Halton sequence
EAGLE_STRATEGY              firefly algorithm (single metric only)
NSGA2                       NSGA-II evolutionary search (meant for several metrics)
==========================  =====================================================================

The first three are Vertex AI's own names; the others work against this service only.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import grpc
from vizier import pythia
from vizier import pyvizier as vz
from vizier._src.algorithms.policies import designer_policy as dp
from vizier._src.service import pythia_service_pb2, service_policy_supporter
from vizier.service import pyvizier as svz

from vizier_keras.server.conditional import FlatSpace
from vizier_keras.server.messages import METADATA_NS, SPEC_KEY

logger = logging.getLogger(__name__)

ALGORITHMS: dict[str, str] = {
    "ALGORITHM_UNSPECIFIED": "GP-UCB-PE (Open Source Vizier's default), faster; 5 seed "
                             "trials, UCB coefficient 1.0, every second suggestion near "
                             "the best trial",
    "GRID_SEARCH": "grid search",
    "RANDOM_SEARCH": "random search",
    "GAUSSIAN_PROCESS_BANDIT": "Gaussian-process bandit (UCB)",
    "QUASI_RANDOM_SEARCH": "quasi-random (Halton) search",
    "EAGLE_STRATEGY": "Eagle strategy (firefly algorithm), one metric",
    "NSGA2": "NSGA-II, for several metrics",
}


# Algorithms that learn from the metrics and honour safety metrics (safetyConfig): an unsafe
# trial is shown to them as infeasible (Open Source Vizier's UnsafeAsInfeasibleDesigner), and
# the safety metrics are no objectives to them. The metric-blind ones need nothing.
_SAFETY_AWARE = ("ALGORITHM_UNSPECIFIED", "GAUSSIAN_PROCESS_BANDIT")
_METRIC_BLIND = ("RANDOM_SEARCH", "GRID_SEARCH", "QUASI_RANDOM_SEARCH")


def _has_safety(problem: vz.ProblemStatement) -> bool:
    return any(m.type.is_safety for m in problem.metric_information)


def _safe(factory: Callable[..., Any], problem: vz.ProblemStatement) -> Callable[..., Any]:
    """``factory``, wrapped so that unsafe trials are infeasible to its designer, when the
    study has safety metrics."""
    if not _has_safety(problem):
        return factory
    from vizier._src.algorithms.designers.unsafe_as_infeasible_designer import (
        UnsafeAsInfeasibleDesigner,
    )

    def inner(statement: vz.ProblemStatement, seed: int | None = None) -> Any:
        # OSS's wrapper always passes seed=; not every factory takes one.
        return factory(statement) if seed is None else factory(statement, seed=seed)

    def make(statement: vz.ProblemStatement, **kwargs: Any) -> Any:
        return UnsafeAsInfeasibleDesigner(statement, inner, seed=kwargs.get("seed"))

    return make


class _SeededDesignerPolicy(dp.DesignerPolicy):
    """A designer policy whose designer draws its random numbers from a key fixed by the
    server's seed, the study's display name and its trial count: the same seed, name and
    history give the same suggestions, in any process (the study's resource name is drawn by
    the service, so it is not part of the key)."""

    def __init__(self, supporter: pythia.PolicySupporter, factory: Callable[..., Any],
                 seed: int, display_name: str) -> None:
        super().__init__(supporter, factory)
        self._unseeded_factory = factory
        self._key = f"{seed}/{display_name}"

    def suggest(self, request: pythia.SuggestRequest) -> pythia.SuggestDecision:
        import jax

        key = zlib.crc32(f"{self._key}/{request.max_trial_id}".encode())
        self._designer_factory = functools.partial(self._unseeded_factory,
                                                   rng=jax.random.PRNGKey(key))
        return super().suggest(request)


def _policy(problem: vz.ProblemStatement, algorithm: str,
            supporter: pythia.PolicySupporter,
            gp_settings: dict[str, Any] | None = None,
            seed: int | None = None, display_name: str = "") -> pythia.Policy:
    if algorithm in ("ALGORITHM_UNSPECIFIED", "DEFAULT", ""):
        from vizier_keras.server import gp

        factory: Callable[..., Any] = (
            gp.service_designer if gp_settings is None
            else functools.partial(gp.gp_ucb_pe_designer_with, settings=gp_settings))
        if seed is not None and not _has_safety(problem):
            return _SeededDesignerPolicy(supporter, factory, seed, display_name)
        return dp.DesignerPolicy(supporter, _safe(factory, problem))
    if algorithm == "RANDOM_SEARCH":
        return _RandomPolicy(problem.search_space)
    if algorithm == "GAUSSIAN_PROCESS_BANDIT":
        from vizier._src.algorithms.designers import gp_bandit

        return dp.DesignerPolicy(supporter,
                                 _safe(gp_bandit.VizierGPBandit.from_problem, problem))
    if algorithm == "QUASI_RANDOM_SEARCH":
        from vizier._src.algorithms.designers import quasi_random

        return dp.PartiallySerializableDesignerPolicy(
            problem, supporter, quasi_random.QuasiRandomDesigner.from_problem)
    if algorithm == "GRID_SEARCH":
        from vizier._src.algorithms.designers import grid

        return dp.PartiallySerializableDesignerPolicy(
            problem, supporter, grid.GridSearchDesigner.from_problem)
    if algorithm == "EAGLE_STRATEGY":
        from vizier._src.algorithms.designers.eagle_strategy import eagle_strategy

        return dp.PartiallySerializableDesignerPolicy(
            problem, supporter, eagle_strategy.EagleStrategyDesigner)
    if algorithm == "NSGA2":
        from vizier._src.algorithms.evolution import nsga2

        return dp.PartiallySerializableDesignerPolicy(problem, supporter, nsga2.NSGA2Designer)
    raise ValueError(f"unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")


def check_algorithm(problem: vz.ProblemStatement, algorithm: str) -> None:
    """Raise ValueError when ``algorithm`` cannot run on ``problem`` (checked at study creation
    by building the designer once)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; this service runs "
                         f"{', '.join(ALGORITHMS)}")
    if _has_safety(problem) and algorithm not in (*_SAFETY_AWARE, *_METRIC_BLIND):
        raise ValueError(f"{algorithm} does not honour safety metrics (safetyConfig); use "
                         f"{', '.join(_SAFETY_AWARE)} (unsafe trials count as infeasible) or "
                         f"the metric-blind {', '.join(_METRIC_BLIND)}")
    objectives = [m for m in problem.metric_information if not m.type.is_safety]
    multi = len(objectives) > 1
    if algorithm == "EAGLE_STRATEGY" and multi:
        raise ValueError("EAGLE_STRATEGY optimises one metric; use NSGA2 or the default "
                         "algorithm for several")
    if algorithm == "ALGORITHM_UNSPECIFIED":
        from vizier_keras.server import gp

        _safe(gp.service_designer, problem)(problem)
    elif algorithm == "GAUSSIAN_PROCESS_BANDIT":
        from vizier._src.algorithms.designers import gp_bandit

        _safe(gp_bandit.VizierGPBandit.from_problem, problem)(problem)
    elif algorithm == "GRID_SEARCH":
        from vizier._src.algorithms.designers import grid

        grid.GridSearchDesigner.from_problem(problem)
    elif algorithm == "NSGA2":
        from vizier._src.algorithms.evolution import nsga2

        nsga2.NSGA2Designer(problem)


class _RandomPolicy(pythia.Policy):
    """OSS's random designer as a policy, the designer built once per search space (OSS's
    RandomPolicy builds one, with its converters, on every call)."""

    _designers: ClassVar[dict[str, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, search_space: vz.SearchSpace) -> None:
        from vizier._src.algorithms.designers import random as random_designer

        key = repr(search_space)
        with self._lock:
            designer = self._designers.get(key)
            if designer is None:
                if len(self._designers) > 256:
                    self._designers.clear()
                designer = self._designers[key] = random_designer.RandomDesigner(search_space)
        self._designer = designer

    def suggest(self, request: pythia.SuggestRequest) -> pythia.SuggestDecision:
        with self._lock:
            return pythia.SuggestDecision(self._designer.suggest(request.count))

    def early_stop(self, request: pythia.EarlyStopRequest) -> pythia.EarlyStopDecisions:
        raise NotImplementedError("early stopping is decided by the service's own rules")


class _FlatSupporter(pythia.PolicySupporter):
    """Shows a designer the trials of a conditional study in the flat space."""

    def __init__(self, inner: pythia.PolicySupporter, space: FlatSpace,
                 problem: vz.ProblemStatement) -> None:
        self._inner = inner
        self._space = space
        self._problem = problem

    @property
    def study_guid(self) -> str:
        return self._inner.study_guid

    def GetStudyConfig(self, study_guid: str) -> vz.ProblemStatement:
        return self._problem

    def GetTrials(self, **kwargs: Any) -> list[vz.Trial]:
        return [self._flatten(t) for t in self._inner.GetTrials(**kwargs)]

    def CheckCancelled(self, note: str | None = None) -> None:
        self._inner.CheckCancelled(note)

    def TimeRemaining(self) -> Any:
        return self._inner.TimeRemaining()

    def _flatten(self, trial: vz.Trial) -> vz.Trial:
        flat = copy.deepcopy(trial)
        values = {name: pv.value for name, pv in trial.parameters.items()}
        flat.parameters = vz.ParameterDict(self._space.to_flat(values))
        return flat


class _ActiveOnlyPolicy(pythia.Policy):
    """Cuts each suggestion of a flat-space policy back to the parameters its conditions make
    active."""

    def __init__(self, inner: pythia.Policy, space: FlatSpace) -> None:
        self._inner = inner
        self._space = space

    def suggest(self, request: pythia.SuggestRequest) -> pythia.SuggestDecision:
        decision = self._inner.suggest(request)
        for suggestion in decision.suggestions:
            flat = {name: pv.value for name, pv in suggestion.parameters.items()}
            suggestion.parameters = vz.ParameterDict(self._space.from_flat(flat))
        return decision

    def early_stop(self, request: pythia.EarlyStopRequest) -> pythia.EarlyStopDecisions:
        return self._inner.early_stop(request)

    @property
    def name(self) -> str:
        return f"ActiveOnly({getattr(self._inner, 'name', type(self._inner).__name__)})"


def vertex_spec_of(problem: vz.ProblemStatement) -> dict[str, Any]:
    """The Vertex StudySpec stored with a study (the flat OSS spec carries it as metadata)."""
    raw = problem.metadata.ns(METADATA_NS).get(SPEC_KEY)
    if raw is None:
        raise ValueError("the study carries no Vertex StudySpec metadata")
    return dict(json.loads(raw))


def make_policy(problem: vz.ProblemStatement, algorithm: str,
                supporter: pythia.PolicySupporter, *,
                gp_settings: dict[str, Any] | None = None,
                seed: int | None = None, display_name: str = "") -> pythia.Policy:
    """The policy that runs ``algorithm`` on ``problem``. ``gp_settings`` replaces the default
    algorithm's settings (:data:`.gp.SERVICE_SETTINGS`; ``{}`` is OSS's own) for every
    study, in the form :func:`.gp.gp_ucb_pe_designer_with` takes. ``seed`` makes the default
    algorithm repeatable (in studies without safety metrics): its random key
    comes from the seed, the study's ``display_name`` and its trial count instead of the
    clock."""
    space = FlatSpace(vertex_spec_of(problem))
    if not space.is_conditional:
        return _policy(problem, algorithm, supporter, gp_settings, seed, display_name)
    flat_supporter = _FlatSupporter(supporter, space, problem)
    return _ActiveOnlyPolicy(
        _policy(problem, algorithm, flat_supporter, gp_settings, seed, display_name), space)


class AlgorithmError(grpc.RpcError):
    """An algorithm failed. OSS's servicer ends the suggest operation with an error only for
    ``grpc.RpcError``; anything else would leave the operation undone forever."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PythiaService:
    """The in-process Pythia service that OSS's VizierServicer calls for suggestions."""

    def __init__(self, policy_factory: Callable[..., pythia.Policy] = make_policy) -> None:
        import jax

        # Like OSS's PythiaServicer: the GP designers expect float64.
        jax.config.update("jax_enable_x64", True)
        self._vizier_service: Any = None
        self._policy_factory = policy_factory

    def connect(self, vizier_service: Any) -> None:
        self._vizier_service = vizier_service

    def Suggest(self, request: pythia_service_pb2.SuggestRequest,
                context: Any = None) -> pythia_service_pb2.SuggestDecision:
        try:
            suggest_request = svz.SuggestConverter.from_request_proto(request)
            guid = request.study_descriptor.guid
            supporter = service_policy_supporter.ServicePolicySupporter(
                guid, self._vizier_service)
            policy = self._policy_factory(
                suggest_request.study_config, request.algorithm, supporter,
                display_name=self._vizier_service.datastore.load_study(guid).display_name)
            decision = policy.suggest(suggest_request)
            if len(decision.suggestions) < suggest_request.count:
                raise RuntimeError(f"the algorithm gave {len(decision.suggestions)} of the "
                                   f"{suggest_request.count} suggestions asked for")
            return svz.SuggestConverter.to_decision_proto(decision)
        except Exception as e:
            logger.exception("algorithm %r failed", request.algorithm)
            raise AlgorithmError(f"algorithm {request.algorithm or 'ALGORITHM_UNSPECIFIED'} "
                                 f"failed: {type(e).__name__}: {e}") from e

    def EarlyStop(self, request: Any, context: Any = None) -> Any:
        raise AlgorithmError("early stopping is decided by the service's own rules")

