"""The layers import alone: the client, errors, names, wire format and spec validation need no
Keras (nor TensorFlow, nor KerasTuner), and the client never imports the Keras layer."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vizier_keras"
KERAS_WORLD = {"keras", "keras_tuner", "tensorflow", "jax"}


def test_client_and_wire_layers_import_with_keras_absent():
    script = textwrap.dedent(f"""
        import sys
        blocked = {sorted(KERAS_WORLD)!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError(f"{{name}} is blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        import vizier_keras
        from vizier_keras import errors, resources, studyspec, wire
        from vizier_keras.client import VizierClient
        VizierClient("http://127.0.0.1:1")
        assert vizier_keras.VizierClient is VizierClient
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not loaded, loaded
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_embedded_module_imports_neither_jax_nor_oss_vizier():
    script = textwrap.dedent("""
        import sys
        import vizier_keras.server.embedded
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "vizier",
                       "tensorflow", "keras", "sqlalchemy"))
        assert not heavy, heavy
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_dependency_direction_is_visible_in_the_tree():
    rules = {
        # module or package -> what it must never import
        "client": KERAS_WORLD | {"vizier_keras.convert", "vizier_keras.server"},
        "errors.py": {"vizier_keras", *KERAS_WORLD, "requests"},
        "resources.py": KERAS_WORLD | {"vizier_keras.client", "requests"},
        "wire.py": KERAS_WORLD | {"vizier_keras.client", "requests"},
        "studyspec.py": KERAS_WORLD | {"vizier_keras.client", "requests"},
        "convert.py": {"vizier_keras.client", "requests", "vizier_keras.server"},
        # The embedded service never imports Keras or the client (tests and the tuner's
        # start-up join them), and embedded.py, imported next to TensorFlow, stays stdlib-only.
        "server": {"keras", "keras_tuner", "tensorflow", "vizier_keras.client",
                   "vizier_keras.convert", "requests"},
        "server/embedded.py": KERAS_WORLD | {"vizier", "jax", "vizier_keras.server.service",
                                             "vizier_keras.server.app", "requests"},
    }
    for target, forbidden in rules.items():
        path = PACKAGE / target
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        assert files, target
        for file in files:
            for name in _imports(file):
                for bad in forbidden:
                    if bad == "vizier_keras" and target == "errors.py":
                        assert not name.startswith("vizier_keras"), (file, name)
                    elif name == bad or name.startswith(bad + "."):
                        raise AssertionError(f"{file.relative_to(ROOT)} imports {name}")
