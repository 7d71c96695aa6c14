"""vizier_keras: hyperparameter tuning for Keras, backed by the Vizier service.

    from vizier_keras import CloudTuner
    tuner = CloudTuner(build_model, project_id=None, region=None,
                       objective="val_accuracy", max_trials=20)

The REST client (:mod:`vizier_keras.client`) and the search-space conversion are importable
alone; importing this package imports neither Keras nor the client until a name that needs them
is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# Public name -> (module, attribute). Loaded on first access (PEP 562), so that
# `import vizier_keras.client` never pulls in Keras.
_LAZY = {
    "Boolean": ("vizier_keras.hypermodel", "Boolean"),
    "Choice": ("vizier_keras.hypermodel", "Choice"),
    "CloudOracle": ("vizier_keras.oracle", "CloudOracle"),
    "CloudTuner": ("vizier_keras.tuner", "CloudTuner"),
    "Fixed": ("vizier_keras.hypermodel", "Fixed"),
    "Float": ("vizier_keras.hypermodel", "Float"),
    "Int": ("vizier_keras.hypermodel", "Int"),
    "PollPolicy": ("vizier_keras.client", "PollPolicy"),
    "RetryPolicy": ("vizier_keras.client", "RetryPolicy"),
    "VizierClient": ("vizier_keras.client", "VizierClient"),
    "VizierError": ("vizier_keras.errors", "VizierError"),
    "VizierReportingCallback": ("vizier_keras.callbacks", "VizierReportingCallback"),
    "VizierTrial": ("vizier_keras.trials", "VizierTrial"),
    "errors": ("vizier_keras.errors", None),
    "suggest_trial": ("vizier_keras.trials", "suggest_trial"),
    "tunable": ("vizier_keras.hypermodel", "tunable"),
}

__all__ = sorted(["__version__", *_LAZY])


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'vizier_keras' has no attribute {name!r}")
    module_name, attribute = target
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
