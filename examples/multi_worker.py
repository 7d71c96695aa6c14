"""Several worker processes tuning one study together, coordinated by one Vizier server.

    python examples/multi_worker.py --workers 3

This starts ``vizier-keras serve`` on a local database (on a team, start it once on a machine
the others reach, with --host and --token) and runs the same tuning script in each worker with
VIZIER_ENDPOINT pointing at it. Each worker gets its own client id; max_trials is counted over
the study; no trial is run twice or lost.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(max_trials: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from sklearn.datasets import load_digits

    sys.path.insert(0, HERE)
    from quickstart import build_model

    from vizier_keras import CloudTuner

    x, y = load_digits(return_X_y=True)
    # project_id=None with VIZIER_ENDPOINT set: the shared server, not an embedded one.
    tuner = CloudTuner(build_model, project_id=None, region=None, objective="val_accuracy",
                       max_trials=max_trials, study_id="multi-worker-digits",
                       early_stopping="median", algorithm="RANDOM_SEARCH",
                       directory=os.path.join("runs", "multi_worker"))
    tuner.search(x / 16.0, y, validation_split=0.2, epochs=15, verbose=0)
    print(f"worker {tuner.tuner_id} ran {int(tuner.search_stats['trials'])} trials")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.max_trials)
        return
    from vizier_keras.server.embedded import start_local_server

    server = start_local_server(os.path.join("runs", "multi_worker", "shared.db"))
    env = {**os.environ, "VIZIER_ENDPOINT": server.url}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--max-trials",
                               str(args.max_trials)], env=env) for _ in range(args.workers)]
    codes = [p.wait() for p in procs]
    from vizier_keras import VizierClient

    with VizierClient(server.url) as client:
        study = client.lookup_study("projects/local/locations/local", "multi-worker-digits")
        trials = client.list_trials(study)
    print(f"{len(trials)} trials in the study, by "
          f"{len({t.get('clientId', '').split('#')[0] for t in trials})} workers; "
          f"exit codes {codes}")
    server.stop()
    if any(codes):
        sys.exit(f"{sum(1 for c in codes if c)} of {len(codes)} workers failed")


if __name__ == "__main__":
    main()
