"""Run test code in a fresh interpreter without TensorFlow.

The embedded service runs Open Source Vizier's JAX algorithms in a process of its own, without
TensorFlow (TensorFlow Probability refuses to load next to a TensorFlow that it finds already
imported). Tests of the service's internals run the same way: in a child process whose imports
of TensorFlow fail, as in the server.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
_PRELUDE = textwrap.dedent("""
    import os, sys
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, {tests!r})
    from vizier_keras.server.process import enable_compilation_cache, keep_tensorflow_out
    keep_tensorflow_out()
    if {cache!r}:
        enable_compilation_cache({cache!r})
    import warnings
    warnings.simplefilter("error")
    for message in ("This function is deprecated. Please call randint",
                    "jax.core.pytype_aval_mappings is deprecated",
                    "JAXopt is no longer maintained"):
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
""")


# The test run's JAX compilation cache (conftest.py makes it; the GP's tests share most of their
# programs).
JAX_CACHE_VARIABLE = "VIZIER_KERAS_TEST_JAX_CACHE"


def jax_cache() -> str:
    """The test run's compilation cache directory ("" when none is set: caching off)."""
    return os.environ.get(JAX_CACHE_VARIABLE, "")


def run_python(code: str, timeout: float = 600) -> str:
    """Run ``code`` (dedented) in a fresh TensorFlow-free interpreter; return its stdout.

    Raises:
        AssertionError: the code failed; its output is in the message.
    """
    source = _PRELUDE.format(tests=str(ROOT / "tests"), cache=jax_cache()) + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"isolated code failed ({out.returncode}):\n{out.stdout}\n"
                             f"{out.stderr[-6000:]}")
    return out.stdout
