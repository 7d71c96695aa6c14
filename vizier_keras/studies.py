"""Study specs for the Keras layer, and opening a study without silently reusing a different one.

:func:`make_study_spec` turns what a KerasTuner user gives (objective, search space, or a raw
Vertex StudySpec) plus the tuner's options (algorithm, early stopping, measurement selection)
into a checked StudySpec. :func:`open_study` finds the study by display name or creates it (race
safe), and refuses one whose spec differs from the requested one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from vizier_keras import convert, protojson, studyspec, wire
from vizier_keras.client import VizierClient
from vizier_keras.errors import NotFoundError, ValidationError
from vizier_keras.resources import LocationName

logger = logging.getLogger(__name__)

__all__ = ["EARLY_STOPPING", "StudyMismatchError", "make_study_spec", "open_study",
           "spec_differences"]

# early_stopping= names -> the StudySpec field that turns the rule on.
EARLY_STOPPING = {
    "median": "medianAutomatedStoppingSpec",
    "decay_curve": "decayCurveStoppingSpec",
    "convex": "convexAutomatedStoppingSpec",
}


class StudyMismatchError(ValidationError):
    """A study with this display name exists with another search space or objective."""


def make_study_spec(
    *,
    objective: Any = None,
    hyperparameters: Any = None,
    study_config: Mapping[str, Any] | None = None,
    algorithm: str | None = None,
    early_stopping: str | Mapping[str, Any] | None = None,
    measurement_selection: str | None = None,
    constraints: Mapping[str, Any] | None = None,
    allow_extensions: bool = True,
) -> dict[str, Any]:
    """A checked StudySpec from a raw ``study_config`` or from objective + search space.

    Args:
        objective: See :func:`vizier_keras.convert.metric_specs`.
        hyperparameters: A ``keras_tuner.HyperParameters``.
        study_config: A Vertex StudySpec as JSON, used as given (and checked). Exclusive with
            objective/hyperparameters.
        algorithm: A StudySpec algorithm name.
        early_stopping: "median", "decay_curve", "convex", a dict such as
            ``{"convexAutomatedStoppingSpec": {"minMeasurementCount": "3"}}``, or None.
        measurement_selection: "LAST_MEASUREMENT" or "BEST_MEASUREMENT" (which measurement a
            trial completed without a final one is scored by).
        constraints: Metric id -> ``("<=", threshold)`` or ``(">=", threshold)``: Vertex AI's
            safety metrics (``MetricSpec.safetyConfig``). A trial whose final value breaks the
            bound is unsafe: not among the best trials, and infeasible to the algorithm. The
            metric must be logged each epoch (a callback can add it to ``logs``).
        allow_extensions: Allow algorithm names beyond Vertex AI's (for a self-hosted service).

    Raises:
        ValidationError: naming the offending argument or field.
    """
    if study_config is not None:
        if objective is not None or (hyperparameters is not None and len(
                getattr(hyperparameters, "space", []))):
            raise ValidationError("study_config", "<given>", "give either study_config or "
                                  "objective and hyperparameters, not both")
        spec = dict(study_config)
    else:
        if hyperparameters is None or not hyperparameters.space:
            raise ValidationError("hyperparameters", None, "the search space is empty: declare "
                                  "hyperparameters in the model-building function, or pass "
                                  "hyperparameters= or study_config=")
        spec = {"metrics": convert.metric_specs(objective),
                "parameters": convert.parameter_specs(hyperparameters)}
    if algorithm is not None:
        spec["algorithm"] = algorithm
    if early_stopping is not None:
        if isinstance(early_stopping, str):
            if early_stopping not in EARLY_STOPPING:
                raise ValidationError("early_stopping", early_stopping,
                                      f"must be one of {', '.join(EARLY_STOPPING)}, a dict, or "
                                      "None")
            spec[EARLY_STOPPING[early_stopping]] = {}
        elif isinstance(early_stopping, Mapping):
            spec.update(dict(early_stopping))
        else:
            raise ValidationError("early_stopping", early_stopping, "must be a rule name, a "
                                  "dict, or None")
    if measurement_selection is not None:
        spec["measurementSelectionType"] = measurement_selection
    if constraints is not None:
        spec["metrics"] = [*spec.get("metrics", []), *_safety_specs(constraints, spec)]
    studyspec.validate_study_spec(spec, allow_extensions=allow_extensions)
    objectives = [m for m, _ in studyspec.iter_metric_specs(spec)]
    rule = studyspec.stopping_rule(spec)
    if rule is not None and len(objectives) > 1:
        raise ValidationError("early_stopping", early_stopping or rule,
                              f"cannot apply to a study of {len(objectives)} objectives "
                              f"({', '.join(objectives)}): Vertex AI documents its stopping "
                              "rules by one objective value; tune one objective, or leave "
                              "early stopping off")
    return spec


def _safety_specs(constraints: Mapping[str, Any], spec: Mapping[str, Any]
                  ) -> list[dict[str, Any]]:
    if not isinstance(constraints, Mapping):
        raise ValidationError("constraints", constraints, 'must be a dict such as '
                              '{"val_latency_ms": ("<=", 20)}')
    objectives = {m.get("metricId") for m in spec.get("metrics", [])}
    out = []
    for metric_id, bound in constraints.items():
        where = f"constraints[{metric_id!r}]"
        wire.check_id(where, metric_id)
        if metric_id in objectives:
            raise ValidationError(where, bound, "names a metric that is already an objective")
        if not (isinstance(bound, (tuple, list)) and len(bound) == 2
                and bound[0] in ("<=", ">=")):
            raise ValidationError(where, bound, 'must be ("<=", threshold) or (">=", '
                                  'threshold)')
        threshold = bound[1]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
                math.isfinite(threshold)):
            raise ValidationError(where, bound, "its threshold must be a finite number")
        out.append({"metricId": metric_id,
                    "goal": "MINIMIZE" if bound[0] == "<=" else "MAXIMIZE",
                    "safetyConfig": {"safetyThreshold": float(threshold)}})
    return out


def _canonical_parameter(spec: Mapping[str, Any]) -> Any:
    kind = studyspec.parameter_type(spec)
    key = next(k for k in spec if k.endswith("ValueSpec"))
    values = dict(spec[key])
    if kind == studyspec.INTEGER:
        values = {k: wire.parse_int64(v) for k, v in values.items()}
    elif kind in (studyspec.DOUBLE, studyspec.DISCRETE):
        values = {k: ([float(x) for x in v] if isinstance(v, list) else float(v))
                  for k, v in values.items()}
    scale = spec.get("scaleType", "SCALE_TYPE_UNSPECIFIED")
    return kind, values, scale


def spec_differences(requested: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """What differs between two StudySpecs, in words (empty when they define the same study:
    the same metrics and goals, parameters, conditions, algorithm and stopping rule)."""
    out: list[str] = []
    # By meaning: an absent field is its default, an enum its name (proto3 JSON).
    requested = protojson.canonical("StudySpec", requested, unknown="ignore")
    existing = protojson.canonical("StudySpec", existing, unknown="ignore")
    want = [(m["metricId"], m["goal"]) for m in requested.get("metrics", [])]
    have = [(m["metricId"], m["goal"]) for m in existing.get("metrics", [])]
    if want != have:
        out.append(f"metrics {have} exist, {want} requested")

    def tree(spec: Mapping[str, Any]) -> dict[tuple[Any, ...], Any]:
        nodes = {}
        for node in studyspec.parameter_nodes(spec):
            where = (node.parent.id if node.parent else None, node.parent_values, node.id)
            nodes[where] = _canonical_parameter(node.spec)
        return nodes

    a, b = tree(requested), tree(existing)
    for key in sorted(set(a) | set(b), key=repr):
        name = key[2] + (f" (under {key[0]} in {list(key[1])})" if key[0] else "")
        if key not in b:
            out.append(f"parameter {name} is requested but not in the study")
        elif key not in a:
            out.append(f"parameter {name} is in the study but not requested")
        elif a[key] != b[key]:
            out.append(f"parameter {name}: the study has {b[key]}, {a[key]} requested")
    for field in ("algorithm", "measurementSelectionType", "observationNoise"):
        default = {"algorithm": "ALGORITHM_UNSPECIFIED",
                   "measurementSelectionType": "MEASUREMENT_SELECTION_TYPE_UNSPECIFIED",
                   "observationNoise": "OBSERVATION_NOISE_UNSPECIFIED"}[field]
        if requested.get(field, default) != existing.get(field, default):
            out.append(f"{field}: the study has {existing.get(field, default)}, "
                       f"{requested.get(field, default)} requested")
    rules = ("medianAutomatedStoppingSpec", "decayCurveStoppingSpec",
             "convexAutomatedStoppingSpec")
    if {k: requested.get(k) for k in rules} != {k: existing.get(k) for k in rules}:
        out.append("the automated stopping rule differs")
    return out


def open_study(client: VizierClient, parent: LocationName, display_name: str,
               spec: Mapping[str, Any], *, overwrite: bool = False) -> dict[str, Any]:
    """The study named ``display_name``, created from ``spec`` if there is none.

    Args:
        overwrite: Delete an existing study of that name first (its trials are lost).

    Raises:
        StudyMismatchError: The existing study has another search space or objective.
    """
    if overwrite:
        try:
            old = client.lookup_study(parent, display_name)
        except NotFoundError:
            pass
        else:
            logger.warning("overwrite=True: deleting study %s (%r) and its trials", old["name"],
                           display_name)
            client.delete_study(old)
    study, created = client.get_or_create_study(parent, display_name, spec)
    if created:
        logger.info("created study %s (%r)", study["name"], display_name)
        return study
    differences = spec_differences(spec, study.get("studySpec", {}))
    if differences:
        raise StudyMismatchError(
            "study_id", display_name,
            f"a study with this name exists ({study['name']}) with another definition: "
            + "; ".join(differences[:5]) + ". Use another study_id, or overwrite=True to "
            "replace it (its trials are lost).")
    logger.info("continuing study %s (%r)", study["name"], display_name)
    return study
