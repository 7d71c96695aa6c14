"""The layers import alone: the client, errors, names, wire format and spec validation need no
Keras (nor TensorFlow, nor KerasTuner), and the client never imports the Keras layer."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # each check runs in a fresh interpreter or runs lint-imports

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


def lint_imports(*config: str) -> subprocess.CompletedProcess[str]:
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache", *config], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_layering_contracts_hold():
    # The contracts are in pyproject.toml ([tool.importlinter]): who may import whom, imports
    # inside functions included.
    out = lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "6 kept" in out.stdout


def test_a_broken_contract_is_seen(tmp_path):
    # The check sees an import chain through the package: the tuner reaches Keras.
    config = tmp_path / "contracts.toml"
    config.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_package = "vizier_keras"
        include_external_packages = true

        [[tool.importlinter.contracts]]
        name = "the tuner without Keras (false)"
        type = "forbidden"
        source_modules = ["vizier_keras.tuner"]
        forbidden_modules = ["keras"]
    """))
    out = lint_imports(str(config))
    assert out.returncode != 0 and "BROKEN" in out.stdout, out.stdout
    assert "vizier_keras.tuner" in out.stdout and "keras" in out.stdout
