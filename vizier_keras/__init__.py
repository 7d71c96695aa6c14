"""vizier_keras: hyperparameter tuning for Keras, backed by the Vizier service.

The REST client and the search-space conversion are importable alone; importing this package
imports neither Keras nor the client until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# Public name -> module that defines it. Loaded on first access (PEP 562), so that
# `import vizier_keras.client` never pulls in Keras.
_LAZY = {
    "VizierClient": "vizier_keras.client",
    "RetryPolicy": "vizier_keras.client",
    "PollPolicy": "vizier_keras.client",
    "errors": "vizier_keras.errors",
    "VizierError": "vizier_keras.errors",
}

__all__ = sorted(["__version__", *_LAZY])


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vizier_keras' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
