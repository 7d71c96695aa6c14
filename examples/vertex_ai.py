"""The quickstart on Google Vertex AI Vizier: the same model, a project and a region.

    pip install ".[tensorflow,examples]"
    gcloud auth application-default login   # or GOOGLE_APPLICATION_CREDENTIALS
    python examples/vertex_ai.py --project my-project --region us-central1

The tuner finds (or creates) the study ``--study`` in Vertex AI and asks it for every trial;
run the same command on several machines (distinct tuner ids are picked for you) and they tune
the study together.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from quickstart import build_model
from sklearn.datasets import load_digits

from vizier_keras import CloudTuner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--study", default="vizier-keras-digits")
    parser.add_argument("--max-trials", type=int, default=20)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    tuner = CloudTuner(build_model, project_id=args.project, region=args.region,
                       objective="val_accuracy", max_trials=args.max_trials,
                       study_id=args.study, early_stopping="median",
                       directory="runs", project_name="vertex")
    tuner.search(x / 16.0, y, validation_split=0.2, epochs=30, verbose=0)
    tuner.results_summary(5)


if __name__ == "__main__":
    main()
