"""The install lines we print pull in what the code they run imports.

The README's first command installs ``.[tensorflow-cpu,local,examples]`` and runs the
quickstart on a fresh machine; the test suite's environment has every extra, so a missing
dependency there (scikit-learn, before the [examples] extra) would pass every other test. Here
each example's third-party imports are traced to the distributions that provide them, and those
must be among the install line's requirements or their dependencies (read from the installed
distributions' metadata, markers evaluated as pip would).
"""

from __future__ import annotations

import ast
import configparser
import pathlib
import re
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
INSTALL = re.compile(r'pip install (?:-e )?"\.\[([\w,-]+)\]"')


def _declared(extras: list[str]) -> set[Requirement]:
    """This package's requirements with ``extras``: install_requires and each extra's lines,
    an extra naming ``vizier-keras[...]`` followed into those extras."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    table = config["options.extras_require"]
    lines = config["options"]["install_requires"].split("\n")
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        if extra not in table:
            raise AssertionError(f"extra [{extra}] is not in setup.cfg's extras_require")
        seen.add(extra)
        for line in table[extra].split("\n"):
            if line.strip() and canonicalize_name(Requirement(line).name) == "vizier-keras":
                todo.extend(Requirement(line).extras)
            else:
                lines.append(line)
    return {Requirement(line) for line in lines if line.strip()}


def _closure(requirements: set[Requirement]) -> set[str]:
    """The distributions ``requirements`` install: them and, transitively, their own
    requirements as installed here (an extra's requirements only where the extra is asked
    for; markers evaluated for this interpreter)."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here (e.g. full tensorflow): its own needs are not traced
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate({"extra": e})
                                           for e in (extras or {""})):
                todo.append((child, frozenset(child.extras)))
    return names


def _third_party_imports(path: pathlib.Path) -> set[str]:
    """The top-level modules ``path`` imports that are neither the standard library nor this
    package; a module beside it (one example importing another's model) brings its own."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    out = set()
    for module in modules - set(sys.stdlib_module_names) - {"__future__", "vizier_keras"}:
        sibling = path.with_name(module + ".py")
        out |= _third_party_imports(sibling) if sibling.exists() else {module}
    return out


def _missing(path: pathlib.Path, extras: list[str]) -> dict[str, list[str]]:
    """The example's imports that no distribution the install line pulls provides, each
    with the distributions that do provide it here."""
    installed = _closure(_declared(extras))
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports(path)):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{path.name} imports {module}, which no installed distribution provides"
        if not dists & installed:
            missing[module] = sorted(dists)
    return missing


def _readme_install_line() -> list[str]:
    for line in (ROOT / "README.md").read_text().splitlines()[:20]:
        if "examples/quickstart.py" in line and "pip install" in line:
            match = INSTALL.search(line)
            assert match, line
            return match.group(1).split(",")
    raise AssertionError("the README's first screen has no install line for the quickstart")


def _own_install_lines() -> list[tuple[pathlib.Path, list[str]]]:
    """The examples whose docstring gives an install line, with its extras."""
    out = []
    for path in EXAMPLES:
        match = INSTALL.search(ast.get_docstring(ast.parse(path.read_text())) or "")
        if match:
            out.append((path, match.group(1).split(",")))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_readmes_install_line_covers_every_examples_imports(path):
    assert _missing(path, _readme_install_line()) == {}


@pytest.mark.parametrize("path, extras", [pytest.param(path, extras, id=path.name)
                                           for path, extras in _own_install_lines()])
def test_an_examples_own_install_line_covers_its_imports(path, extras):
    assert _missing(path, extras) == {}


def test_the_check_sees_a_missing_dependency():
    # Without the [examples] extra the quickstart's scikit-learn import is not provided: the
    # README line as it was before the extra existed.
    quickstart = ROOT / "examples" / "quickstart.py"
    assert _missing(quickstart, ["tensorflow-cpu", "local"]) == {"sklearn": ["scikit-learn"]}
    with pytest.raises(AssertionError, match=r"\[nope\]"):
        _declared(["nope"])


# The results layer's modules, each with the extra that its docstring (and the README) says it
# needs: a module's third-party imports must come with that extra.
LAYER_EXTRAS = {
    "vizier_keras/results/study.py": ["results"],
    "vizier_keras/results/sources.py": ["results"],
    "vizier_keras/server/sqlfile.py": ["results"],
    "vizier_keras/server/messages.py": ["results"],
    "vizier_keras/server/names.py": ["results"],
    "vizier_keras/results/mirror.py": ["plots"],
    "vizier_keras/results/plots.py": ["plots"],
    "vizier_keras/results/dashboard.py": ["dashboard"],
    "vizier_keras/cli.py": [],
}


@pytest.mark.parametrize("module, extras", list(LAYER_EXTRAS.items()))
def test_each_results_module_comes_with_its_extra(module, extras):
    assert _missing(ROOT / module, extras) == {}
