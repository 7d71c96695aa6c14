"""A model whose ``fit`` replays recorded epochs through the callbacks, without training:
KerasTuner's ``MockModel`` idea, for tests of what callbacks do with a learning curve (report
it, stop on it), not of learning. Keras's own ``CallbackList`` and ``History`` drive the
callbacks, as in ``model.fit``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


class ReplayModel(keras.Model):
    """``fit`` calls the callbacks' train and epoch hooks with ``epochs``' logs, one epoch at a
    time, and stops when a callback sets ``stop_training``; it returns Keras's ``History``."""

    def __init__(self, epochs: Sequence[dict[str, float]]) -> None:
        super().__init__()
        self.recorded = [dict(logs) for logs in epochs]

    def fit(self, *args: Any, epochs: int | None = None,  # type: ignore[override]
            callbacks: Sequence[keras.callbacks.Callback] = (), **kwargs: Any
            ) -> keras.callbacks.History:
        history = keras.callbacks.History()
        hooks = keras.callbacks.CallbackList([*callbacks, history], model=self)
        self.stop_training = False
        hooks.on_train_begin()
        for epoch, logs in enumerate(self.recorded[:epochs]):
            hooks.on_epoch_begin(epoch)
            hooks.on_epoch_end(epoch, dict(logs))
            if self.stop_training:
                break
        hooks.on_train_end()
        return history
