"""Look at studies: results as data, plots, and a live dashboard.

Light: importing this package needs neither Keras nor JAX. DataFrames need pandas (the
``[results]`` extra), plots matplotlib and Optuna (``[plots]``), the dashboard optuna-dashboard
(``[dashboard]``). Reading a database file needs Open Source Vizier's protos (``[results]``),
not its JAX algorithms.

Example::

    from vizier_keras.results import load_study

    results = load_study("my-study", database="tuning/vizier.db")
    results.trials_dataframe()            # a row per trial
    results.measurements_dataframe()      # a row per reported metric
    results.best_trials(3)
"""

from vizier_keras.pareto import pareto_fronts
from vizier_keras.results.sources import DatabaseSource, ServiceSource, Source, open_source
from vizier_keras.results.study import STOPPED_EARLY, StudyResults, load_study

__all__ = ["STOPPED_EARLY", "DatabaseSource", "ServiceSource", "Source", "StudyResults",
           "load_study", "open_source", "pareto_fronts"]
