"""The examples run: each script as a user runs it, in a fresh working directory, on the
embedded service, with small budgets where it takes them (no network, no Google project).

vertex_ai.py needs a project and credentials; here only its imports and options are run.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def run_example(name: str, *args: str, cwd: pathlib.Path, timeout: float = 600
                ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("VIZIER_ENDPOINT", None)
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{name} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


def test_quickstart_tunes_and_reports_the_best_model(tmp_path):
    out = run_example("quickstart.py", "--max-trials", "2", "--epochs", "2",
                      "--directory", str(tmp_path / "runs"), cwd=tmp_path)
    assert re.search(r"best model: test accuracy 0\.\d{4} on 360 held-out digits", out.stdout)
    assert "search: 2 trials in" in out.stdout
    assert (tmp_path / "runs" / "quickstart").is_dir()
    # The progress lines (the example searches with verbose=0), and the command it suggests
    # for looking at the study, run as printed.
    assert "[2/2] trial" in out.stdout
    command = re.search(r"look at the study: (vizier-keras trials .*)", out.stdout)
    assert command, out.stdout
    argv = command.group(1).split()
    trials = subprocess.run([sys.executable, "-m", "vizier_keras.cli", *argv[1:], "--format",
                             "json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert trials.returncode == 0, trials.stderr
    assert [row["trial"] for row in json.loads(trials.stdout)] == [1, 2]


def test_conditional_space_runs_its_eight_trials(tmp_path):
    out = run_example("conditional_space.py", cwd=tmp_path)
    # results_summary's table: a row per trial, a column per parameter, a conditional
    # parameter's cell empty where the trial's model does not have it.
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "trial"])
    names = lines[header].split()
    starts = [lines[header].index(f" {name}") + 1 for name in names] + [None]
    rows = [{name: line[a:b].strip()
             for name, a, b in zip(names, starts[:-1], starts[1:], strict=True)}
            for line in lines[header + 1:] if line.strip()]
    assert sorted(int(r["trial"]) for r in rows) == list(range(1, 9))
    for row in rows:
        assert row["model"] in ("mlp", "cnn")
        assert bool(row["mlp_units"]) == (row["model"] == "mlp"), row
        assert bool(row["filters"]) == (row["model"] == "cnn"), row


def test_standalone_callback_runs_one_trial_per_run(tmp_path):
    first = run_example("standalone_callback.py", cwd=tmp_path)
    second = run_example("standalone_callback.py", cwd=tmp_path)
    for number, out in ((1, first), (2, second)):
        assert re.search(rf"^trial {number}: SUCCEEDED, final .*val_accuracy", out.stdout,
                         re.M), out.stdout


def test_multi_worker_shares_one_study_without_duplicates(tmp_path):
    out = run_example("multi_worker.py", "--workers", "2", "--max-trials", "3", cwd=tmp_path)
    # The study holds max_trials trials and the workers' own counts add up to them: none run
    # twice, none lost. (Which worker ran how many depends on their start times.)
    assert re.search(r"^3 trials in the study, by [12] workers; exit codes \[0, 0\]$",
                     out.stdout, re.M), out.stdout
    ran = [int(n) for n in re.findall(r"^worker \S+ ran (\d+) trials$", out.stdout, re.M)]
    assert len(ran) == 2 and sum(ran) == 3, out.stdout


def test_vertex_ai_imports_and_parses_its_options(tmp_path):
    out = run_example("vertex_ai.py", "--help", cwd=tmp_path)
    assert "--project" in out.stdout
