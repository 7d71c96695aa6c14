"""Conditional search spaces for designers that only know flat ones.

Open Source Vizier's designers refuse conditional search spaces. The service hands them a flat
space instead: every node of the parameter tree becomes a top-level parameter (a name declared
under several values of one parent gets one flat parameter per declaration, the later ones
renamed ``name~2``, ``name~3``, ...). Completed trials are shown to the designer with their
inactive parameters filled in by a fixed value (the spec's default, else its lowest value or first
category), and each suggestion is cut back to the parameters active under its parents' values.
So a trial carries exactly the parameters that its conditions make active.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vizier_keras import studyspec, wire

__all__ = ["FlatSpace"]


class FlatSpace:
    """The flat view of a (possibly conditional) Vertex StudySpec.

    Example::

        space = FlatSpace(spec)
        space.parameter_specs()          # flat ParameterSpec messages for a designer
        space.to_flat({"model": "mlp", "layers": 2})      # every flat parameter, imputed
        space.from_flat(designer_values)                  # only the active ones, by id
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.nodes = studyspec.parameter_nodes(spec)
        taken = {node.id for node in self.nodes}
        self._flat_name: dict[int, str] = {}
        seen: dict[str, int] = {}
        for node in self.nodes:
            count = seen.get(node.id, 0) + 1
            seen[node.id] = count
            name = node.id
            if count > 1:
                name = f"{node.id}~{count}"
                while name in taken:
                    name += "~"
                taken.add(name)
            self._flat_name[id(node)] = name

    @property
    def is_conditional(self) -> bool:
        return any(node.parent is not None for node in self.nodes)

    def flat_name(self, node: studyspec.ParameterNode) -> str:
        return self._flat_name[id(node)]

    def parameter_specs(self) -> list[dict[str, Any]]:
        """The flat ParameterSpec messages (no conditional children, unique ids)."""
        out = []
        for node in self.nodes:
            flat = {k: v for k, v in node.spec.items() if k != "conditionalParameterSpecs"}
            flat["parameterId"] = self.flat_name(node)
            out.append(flat)
        return out

    def _active(self, value_of: Any) -> list[studyspec.ParameterNode]:
        """Active nodes, where ``value_of(node)`` gives a node's typed value (or None)."""
        active: list[studyspec.ParameterNode] = []
        on: dict[int, bool] = {}
        for node in self.nodes:
            parent = node.parent
            if parent is None:
                is_on = True
            else:
                parent_value = value_of(parent) if on.get(id(parent)) else None
                is_on = parent_value is not None and any(
                    studyspec.same_value(parent.type, parent_value, v) for v in node.parent_values)
            on[id(node)] = is_on
            if is_on:
                active.append(node)
        return active

    def to_flat(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Flat values for a trial's values (by parameter id): active parameters keep their
        value, inactive ones get the fixed fill-in."""
        active = {id(n) for n in self._active(lambda n: values.get(n.id))}
        out: dict[str, Any] = {}
        for node in self.nodes:
            if id(node) in active and node.id in values:
                out[self.flat_name(node)] = values[node.id]
            else:
                out[self.flat_name(node)] = fill_value(node.spec)
        return out

    def from_flat(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The values by parameter id of the parameters active under ``flat``'s values."""
        out: dict[str, Any] = {}
        for node in self._active(lambda n: flat.get(self.flat_name(n))):
            name = self.flat_name(node)
            if name in flat:
                out[node.id] = flat[name]
        return out


def fill_value(spec: Mapping[str, Any]) -> Any:
    """The fixed value shown to a designer for an inactive parameter."""
    kind = studyspec.parameter_type(spec)
    if kind == studyspec.CATEGORICAL:
        vs = spec["categoricalValueSpec"]
        return vs.get("defaultValue", vs["values"][0])
    if kind == studyspec.DISCRETE:
        vs = spec["discreteValueSpec"]
        values = [float(v) for v in vs["values"]]
        if "defaultValue" in vs:
            return min(values, key=lambda v: abs(v - float(vs["defaultValue"])))
        return values[0]
    low = studyspec.bounds(spec)[0]
    if kind == studyspec.INTEGER:
        default = spec["integerValueSpec"].get("defaultValue")
        return low if default is None else wire.parse_int64(default)
    default = spec["doubleValueSpec"].get("defaultValue")
    return low if default is None else float(default)
