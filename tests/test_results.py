"""Results as data, the CLI and the plots, on a real study of the embedded service (served in this
process; deleting through a server, against a real server process)."""

from __future__ import annotations

import csv
import json
import math
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
from conftest import FAST_POLL, FAST_RETRY, unique
from hypothesis import given
from hypothesis import strategies as st
from processes import ServerProcess
from results_study import EPOCHS, GOOD, make_study
from vertex_shaped import VertexShapedSession

from vizier_keras import wire
from vizier_keras.client import VizierClient
from vizier_keras.errors import NotFoundError
from vizier_keras.resources import LocationName
from vizier_keras.results import (
    STOPPED_EARLY,
    ServiceSource,
    StudyResults,
    load_study,
    open_source,
    pareto_fronts,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
PARENT = "projects/local/locations/local"


@pytest.fixture(scope="module")
def made(in_process_server: Any) -> dict[str, Any]:
    with VizierClient(in_process_server.url, retry=FAST_RETRY, poll=FAST_POLL, timeout=60) as c:
        return make_study(c, PARENT, unique("results"))


@pytest.fixture(scope="module")
def listed(in_process_server: Any, made: dict[str, Any]) -> list[dict[str, Any]]:
    """The trials as the client lists them (the truth the results are checked against)."""
    with VizierClient(in_process_server.url, retry=FAST_RETRY, poll=FAST_POLL, timeout=60) as c:
        return c.list_trials(made["study"]["name"])


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "vizier_keras.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without what moves with the clock (a running trial's elapsed time)."""
    return [{k: v for k, v in r.items() if not (k == "elapsed" and r["state"] == "ACTIVE")}
            for r in rows]


# ---------------------------------------------------------------------------- as data


@pytest.mark.parametrize("where", ["database", "endpoint"])
def test_records_say_what_the_client_lists(in_process_server, made, listed, where):
    kwargs = ({"database": str(in_process_server.database)} if where == "database"
              else {"endpoint": in_process_server.url})
    results = load_study(made["study"]["displayName"], **kwargs)
    rows = results.records()
    assert [r["trial"] for r in rows] == [int(t["id"]) for t in listed]
    for row, trial in zip(rows, listed, strict=True):
        state = wire.trial_state(trial).value
        if trial["id"] in made["stopped"]:
            assert row["state"] == STOPPED_EARLY and state == "SUCCEEDED"
            assert "median" in row["stop_reason"] and not row["stopped_early_inferred"]
        else:
            assert row["state"] == state
        final = wire.trial_final_metrics(trial)
        assert {m: row[m] for m in final} == final
        raw = wire.trial_parameters(trial)
        assert row["params.lr"] == raw["lr"] and row["params.units"] == raw["units"]
        assert isinstance(row["params.units"], int)
        if raw["optimizer"] == "sgd":
            assert row["params.momentum"] == raw["momentum"]
        else:  # inactive: missing, not 0
            assert row["params.momentum"] is None
        assert row["worker"] == trial["clientId"]
    by_id = {str(r["trial"]): r for r in rows}
    assert len(made["stopped"]) == 2
    assert by_id[made["infeasible"]]["infeasible_reason"] == "out of memory"
    assert math.isnan(by_id[made["infeasible"]]["val_accuracy"])
    assert by_id[made["active"]]["state"] == "ACTIVE" and by_id[made["active"]]["end"] is None
    assert by_id[made["best"]]["steps"] == EPOCHS
    assert all(by_id[t]["steps"] < EPOCHS for t in made["stopped"])


def test_database_and_endpoint_agree(in_process_server, made):
    name = made["study"]["name"]
    from_file = load_study(name, database=str(in_process_server.database))
    from_server = load_study(name, endpoint=in_process_server.url)
    assert stable(from_file.records()) == stable(from_server.records())
    assert from_file.measurement_records() == from_server.measurement_records()


def test_stopped_early_is_inferred_where_trials_do_not_record_it(in_process_server, made, listed):
    # Vertex AI has no field for it: its answers (re-encoded by the v1 messages) carry none.
    client = VizierClient(in_process_server.url, session=VertexShapedSession(), retry=FAST_RETRY,
                          poll=FAST_POLL)
    source = ServiceSource(client, LocationName("local", "local"))
    source.records_stops = False  # as for Vertex AI
    results = load_study(made["study"]["name"], source=source)
    assert results.stops_inferred
    rows = {str(r["trial"]): r for r in results.records()}
    for trial_id, row in rows.items():
        stopped = trial_id in made["stopped"]
        assert (row["state"] == STOPPED_EARLY) == stopped, row
        assert row["stopped_early_inferred"] == stopped
    # Through the same answers, a source that reads records finds none to read.
    source.records_stops = True
    assert STOPPED_EARLY not in {r["state"] for r in results.records()}
    client.close()


def test_dataframes(in_process_server, made, listed):
    results = load_study(made["study"]["name"], database=str(in_process_server.database))
    df = results.trials_dataframe()
    assert list(df["trial"]) == [int(t["id"]) for t in listed]
    assert {"state", "val_accuracy", "params.lr", "params.momentum", "steps", "elapsed",
            "start", "end", "worker", "infeasible_reason"} <= set(df.columns)
    assert str(df["params.units"].dtype).startswith(("int", "Int")) or df[
        "params.units"].map(type).eq(int).all()
    assert df.loc[df["state"] == STOPPED_EARLY, "trial"].astype(str).tolist() == made["stopped"]
    long = results.measurements_dataframe()
    assert list(long.columns) == ["trial", "step", "elapsed", "metric", "value"]
    expected = sum(len(m.get("metrics", [])) for t in listed for m in t.get("measurements", []))
    assert len(long) == expected
    one = long[(long["trial"] == int(made["best"])) & (long["metric"] == "val_accuracy")]
    assert list(one["step"]) == list(range(1, EPOCHS + 1))


def test_best_trials(in_process_server, made, listed):
    results = load_study(made["study"]["name"], endpoint=in_process_server.url)
    best = results.best_trials(3)
    finished = [t for t in listed if "finalMeasurement" in t]
    ranked = sorted(finished, key=lambda t: -t["finalMeasurement"]["metrics"][0]["value"])
    assert [str(r["trial"]) for r in best] == [t["id"] for t in ranked[:3]]
    assert str(best[0]["trial"]) == made["best"]
    assert len(results.best_trials(100)) == GOOD + 2  # finished trials, stopped ones included
    with pytest.raises(ValueError):
        results.best_trials(0)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=25))
def test_pareto_fronts_are_the_dominance_layers(points):
    fronts = pareto_fronts(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    left = set(range(len(points)))

    def dominated(i: int, among: set[int]) -> bool:
        return any(all(a >= b for a, b in zip(points[j], points[i], strict=True))
                   and points[j] != points[i] for j in among)

    for front in fronts:  # brute force: the front is what nothing left dominates
        assert sorted(front) == sorted(i for i in left if not dominated(i, left))
        left -= set(front)


def test_no_source_or_no_study_is_a_clear_error(tmp_path, in_process_server):
    with pytest.raises(Exception, match="--database"):
        open_source(environ={})
    with pytest.raises(Exception, match="does not exist"):
        open_source(database=tmp_path / "missing.db")
    (tmp_path / "other.db").write_bytes(b"not a database at all, just some bytes" * 10)
    with pytest.raises(Exception, match=r"other\.db"):
        open_source(database=tmp_path / "other.db")
    with pytest.raises(Exception, match="no study 'nope'"):
        load_study("nope", endpoint=in_process_server.url)


# ---------------------------------------------------------------------------- the CLI


@pytest.mark.slow  # subprocesses
def test_cli_trials_export_and_best_agree_with_the_client(tmp_path, in_process_server, made,
                                                          listed):
    db = str(in_process_server.database)
    name = made["study"]["displayName"]
    as_json = json.loads(cli("trials", name, "--database", db, "--format", "json").stdout)
    assert [str(r["trial"]) for r in as_json] == [t["id"] for t in listed]
    for row, trial in zip(as_json, listed, strict=True):
        assert row["params.lr"] == wire.trial_parameters(trial)["lr"]
        final = wire.trial_final_metrics(trial)
        assert row["val_accuracy"] == final.get("val_accuracy")  # NaN is null in JSON
    cli("export", name, "--endpoint", in_process_server.url, "-o", str(tmp_path / "t.csv"))
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == [t["id"] for t in listed]
    assert [r["state"] for r in rows] == [
        STOPPED_EARLY if t["id"] in made["stopped"] else t["state"] for t in listed]
    assert {r["trial"]: float(r["val_accuracy"]) for r in rows if r["val_accuracy"]} == {
        t["id"]: wire.trial_final_metrics(t)["val_accuracy"] for t in listed
        if "finalMeasurement" in t}
    cli("export", name, "--database", db, "-o", str(tmp_path / "m.json"), "--measurements")
    long = json.loads((tmp_path / "m.json").read_text())
    assert len(long) == sum(len(m.get("metrics", [])) for t in listed
                            for m in t.get("measurements", []))
    best = json.loads(cli("best", name, "--database", db, "-n", "1", "--format", "json").stdout)
    assert [str(b["trial"]) for b in best] == [made["best"]]
    table = cli("best", name, "--database", db, "-n", "2").stdout
    assert table.splitlines()[1].split()[0] == made["best"]
    studies = cli("studies", "--database", db).stdout
    assert name in studies


@pytest.mark.slow  # subprocesses
def test_cli_errors_are_one_line_and_exit_2(tmp_path, in_process_server, made):
    done = cli("trials", "no-such-study", "--database", str(in_process_server.database),
               check=False)
    assert done.returncode == 2 and "no study 'no-such-study'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = cli("trials", "x", "--database", str(tmp_path / "missing.db"), check=False)
    assert done.returncode == 2 and "missing.db" in done.stderr
    done = cli("export", made["study"]["name"], "--database", str(in_process_server.database),
               "-o", str(tmp_path / "t.xlsx"), check=False)
    assert done.returncode == 2 and "t.xlsx" in done.stderr
    done = cli("studies", check=False)
    assert done.returncode == 2 and "--database" in done.stderr


@pytest.mark.slow  # subprocesses
def test_cli_delete_through_the_server_and_in_a_file(tmp_path, local_server):
    with VizierClient(local_server.url, retry=FAST_RETRY, poll=FAST_POLL) as c:
        study = c.create_study(PARENT, unique("doomed"), {
            "metrics": [{"metricId": "m", "goal": "MAXIMIZE"}],
            "parameters": [{"parameterId": "x", "doubleValueSpec": {"maxValue": 1}}],
            "algorithm": "RANDOM_SEARCH"})
        db = str(local_server.database)
        refused = cli("delete", study["displayName"], "--database", db, check=False)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        assert c.get_study(study["name"])
        # The file is held by a server: the deletion goes through it.
        cli("delete", study["displayName"], "--database", db, "--yes")
        with pytest.raises(NotFoundError):
            c.get_study(study["name"])
    # A file no server holds: deleted in the file, the other studies kept.
    copy = tmp_path / "copy.db"
    server = ServerProcess(copy)
    try:
        with VizierClient(server.wait_ready(), retry=FAST_RETRY, poll=FAST_POLL) as c:
            keep = make_study(c, PARENT, "keep")
            gone = make_study(c, PARENT, "gone")
    finally:
        server.stop()
    cli("delete", "gone", "--database", str(copy), "--yes")
    left = load_study("keep", database=str(copy))
    assert len(left.trials) == GOOD + 4
    assert [s["name"] for s in open_source(database=copy).list_studies()] == [
        keep["study"]["name"]]
    assert gone["study"]["name"] != keep["study"]["name"]


# ---------------------------------------------------------------------------- plots


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("kind", ["history", "curves", "parallel", "importance"])
def test_plots_are_images_with_content(tmp_path, in_process_server, made, kind):
    import matplotlib.image

    out = tmp_path / f"{kind}.png"
    cli("plot", made["study"]["name"], "--database", str(in_process_server.database),
        "--kind", kind, "-o", str(out))
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.05  # not blank
    page = tmp_path / f"{kind}.html"
    cli("plot", made["study"]["name"], "--endpoint", in_process_server.url, "--kind", kind,
        "-o", str(page))
    text = page.read_text()
    assert "Plotly.newPlot" in text and "<script src=" not in text  # works offline


def test_learning_curves_draw_one_line_per_measured_trial(in_process_server, made, listed):
    from vizier_keras.results.plots import figure

    results = load_study(made["study"]["name"], database=str(in_process_server.database))
    lines = {line.get_gid(): line for line in figure(results, "curves").axes[0].get_lines()}
    measured = [t["id"] for t in listed if t.get("measurements")]
    assert sorted(lines) == sorted(f"trial-{t}" for t in measured)
    for trial_id in measured:
        style = lines[f"trial-{trial_id}"].get_linestyle()
        assert (style == "--") == (trial_id in made["stopped"])
    page = figure(results, "curves", interactive=True)
    assert sorted(t.name for t in page.data) == sorted(f"trial {t}" for t in measured)
    history = figure(results, "history").axes[0]
    assert max(history.get_lines()[0].get_ydata()) == pytest.approx(
        max(t["finalMeasurement"]["metrics"][0]["value"] for t in listed
            if "finalMeasurement" in t))


@pytest.mark.slow  # subprocesses
def test_results_and_cli_import_neither_keras_nor_jax():
    code = ("import sys, vizier_keras.results, vizier_keras.results.plots, vizier_keras.cli\n"
            "import vizier_keras.results.dashboard\n"
            "heavy = [m for m in ('keras', 'keras_tuner', 'tensorflow', 'jax') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_a_copied_database_reads_the_same(tmp_path, in_process_server, made):
    copy = tmp_path / "copy.db"
    shutil.copy(in_process_server.database, copy)  # WAL: committed pages may still be in the log
    for suffix in ("-wal", "-shm"):
        side = pathlib.Path(str(in_process_server.database) + suffix)
        if side.exists():
            shutil.copy(side, str(copy) + suffix)
    one = load_study(made["study"]["name"], database=str(copy))
    two = StudyResults(one.study, source=open_source(database=in_process_server.database)).refresh()
    assert stable(one.records()) == stable(two.records())
