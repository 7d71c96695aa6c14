"""The embedded service as real processes: the CLI, clean shutdown, one owner per database file,
kill -9 and restart, unfinished operations left by a crash, many client processes at once, and
embedded mode (start, share, stop with the owner)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import FAST_POLL, FAST_RETRY
from processes import ServerProcess

from vizier_keras import errors
from vizier_keras.client import VizierClient

pytestmark = pytest.mark.slow  # every test here starts server processes

PARENT = "projects/p/locations/local"
ROOT = Path(__file__).resolve().parents[1]
SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}},
                       {"parameterId": "n", "integerValueSpec": {"minValue": "1",
                                                                 "maxValue": "9"}}],
        "algorithm": "RANDOM_SEARCH"}


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(database: Path | None = None, *extra: str) -> ServerProcess:
        proc = ServerProcess(database or tmp_path / "vizier.db", *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def client(url: str) -> VizierClient:
    return VizierClient(url, retry=FAST_RETRY, poll=FAST_POLL, timeout=60)


def test_cli_serves_and_shuts_down_cleanly_on_sigterm(server_process, tmp_path):
    proc = server_process()
    url = proc.wait_ready()
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["status"] == "SERVING" and health["database"] == str(tmp_path / "vizier.db")
    assert (tmp_path / "vizier.db.server.json").exists()
    with client(url) as c:
        c.create_study(PARENT, "s", SPEC)
    proc.process.send_signal(signal.SIGTERM)
    assert proc.process.wait(30) == 0
    assert not (tmp_path / "vizier.db.server.json").exists()
    assert "stopped" in proc.output()


def test_one_server_per_database_file(server_process):
    first = server_process()
    first.wait_ready()
    second = server_process()
    assert second.process.wait(60) != 0
    assert "already owns" in second.output()
    first.process.send_signal(signal.SIGINT)
    assert first.process.wait(30) == 0


def test_kill_9_and_restart_keeps_every_study_trial_and_measurement(server_process, tmp_path):
    proc = server_process()
    with client(proc.wait_ready()) as c:
        study = c.create_study(PARENT, "persist", SPEC)
        done = []
        for i in range(3):
            trial = c.suggest_trials(study, 1, client_id=f"w{i}").trials[0]
            c.add_trial_measurement(trial, {"loss": 1.0 - i / 10}, step_count=1)
            done.append(c.complete_trial(trial))
        pending = c.suggest_trials(study, 1, client_id="w-pending").trials[0]
        c.add_trial_measurement(pending, {"loss": 0.5}, step_count=1)
        before = c.list_trials(study)
    proc.process.kill()  # SIGKILL: no cleanup at all
    proc.process.wait(30)
    restarted = server_process()
    with client(restarted.wait_ready()) as c:
        assert c.list_trials(study) == before
        assert c.lookup_study(PARENT, "persist")["name"] == study["name"]
        # The study goes on: the pending worker gets its trial back, others get new ones.
        assert c.suggest_trials(study, 1, client_id="w-pending").trials[0]["name"] == (
            pending["name"])
        fresh = c.suggest_trials(study, 1, client_id="w-new").trials[0]
        assert int(fresh["id"]) == 5
        assert c.complete_trial(pending)["finalMeasurement"]["metrics"][0]["value"] == 0.5


def test_an_operation_left_unfinished_by_a_crash_ends_with_unavailable(server_process, tmp_path):
    proc = server_process()
    with client(proc.wait_ready()) as c:
        study = c.create_study(PARENT, "orphan", SPEC)
    proc.process.kill()
    proc.process.wait(30)
    # Leave what a server killed in the middle of a suggestion leaves: an operation not done
    # (a row of OSS Vizier's suggestion_operations table).
    import sqlite3

    from google.longrunning import operations_pb2

    study_id = study["name"].rsplit("/", 1)[1]
    op_name = f"owners/p~local/operations/suggestion/{study_id}/w0/1"
    with sqlite3.connect(tmp_path / "vizier.db") as db:
        db.execute("INSERT INTO suggestion_operations VALUES (?, ?, ?, ?, ?, ?)",
                   (op_name, "p~local", study_id, "w0", 1,
                    operations_pb2.Operation(name=op_name, done=False).SerializeToString()))
    db.close()

    restarted = server_process()
    with client(restarted.wait_ready()) as c:
        result = c.suggest_trials(study, 1, client_id="w0")  # works again at once
        assert len(result.trials) == 1
        stale = f"{study['name']}/operations/suggest-1-dzA"  # client "w0", number 1
        op = c.get_operation(stale)
        assert op["done"] and op["error"]["code"] == 14
        with pytest.raises(errors.UnavailableError):
            c.poll_operation(stale)
    assert "ended orphaned operation" in restarted.output()


def test_kill_9_while_a_suggestion_computes_and_the_restarted_server_finishes_it(
        server_process, tmp_path):
    # The default algorithm's first suggestion loads the GP module for seconds: time enough to
    # kill the server while the operation is unfinished.
    proc = server_process()
    with client(proc.wait_ready()) as c:
        study = c.create_study(PARENT, "killed", {**SPEC, "algorithm": "ALGORITHM_UNSPECIFIED"})
        operation = c.start_suggest_trials(study, 2, "w0")
    assert not operation.get("done")
    proc.process.kill()
    proc.process.wait(30)
    restarted = server_process()
    with client(restarted.wait_ready()) as c:
        done = c.poll_operation(operation["name"], timeout=300)
        trials = done["response"]["trials"]
        assert len(trials) == 2 and {t["clientId"] for t in trials} == {"w0"}
        assert len(c.list_trials(study)) == 2  # nothing computed twice
        # Asking again with the same client id hands back the same trials.
        again = c.suggest_trials(study, 2, client_id="w0").trials
        assert [t["name"] for t in again] == [t["name"] for t in trials]
    assert "resuming suggest operation" in restarted.output()


def test_kill_9_under_write_load_loses_no_acknowledged_write(server_process, tmp_path):
    """Four writers create, measure and complete trials while the server is killed (-9): every
    write it acknowledged is there after a restart, exactly as acknowledged."""
    import threading

    proc = server_process()
    url = proc.wait_ready()
    with client(url) as c:
        study = c.create_study(PARENT, "under-load", SPEC)
    acked: dict[str, dict[str, Any]] = {}  # trial name -> what the server acknowledged
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with VizierClient(url, retry=errors_off, timeout=10) as c:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if n % 2:  # a trial added by hand, completed at once
                        trial = c.create_trial(study, {"x": (n % 100) / 100, "n": 1 + n % 9})
                        steps: tuple[int, ...] = ()
                    else:  # a suggested one, measured twice, then completed
                        trial = c.suggest_trials(study, 1, client_id=f"w{worker}").trials[0]
                        steps = (1, 2)
                    with lock:
                        acked[trial["name"]] = {"steps": [], "final": None}
                    for step in steps:
                        c.add_trial_measurement(trial, {"loss": worker + n / 1000 + step},
                                                step_count=step)
                        with lock:
                            acked[trial["name"]]["steps"].append(step)
                    c.complete_trial(trial, {"loss": worker + n / 1000})
                    with lock:
                        acked[trial["name"]]["final"] = worker + n / 1000
                except errors.VizierError:
                    return  # the server is gone: what was acknowledged so far counts

    from vizier_keras.client import RetryPolicy

    errors_off = RetryPolicy(max_attempts=1)
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    proc.process.kill()  # SIGKILL, mid-write
    proc.process.wait(30)
    stop.set()
    for t in threads:
        t.join(60)
    assert len(acked) > 20
    restarted = server_process()
    with client(restarted.wait_ready()) as c:
        stored = {t["name"]: t for t in c.list_trials(study)}
    for name, want in acked.items():
        trial = stored[name]
        steps = [int(m.get("stepCount", 0)) for m in trial.get("measurements", [])]
        assert set(want["steps"]) <= set(steps), (name, want, trial)
        if want["final"] is not None:
            assert trial["state"] == "SUCCEEDED", (name, trial)
            assert trial["finalMeasurement"]["metrics"][0]["value"] == want["final"]


def serve_fails(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``vizier-keras serve`` expecting a refusal: exit status 2 and one line on stderr,
    which is returned."""
    out = subprocess.run([sys.executable, "-m", "vizier_keras.cli", "serve", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vizier-keras serve: "), out.stderr
    return lines[0]


def test_start_up_errors_are_one_sentence_and_touch_no_foreign_file(tmp_path, server_process):
    import sqlite3

    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert "is not a SQLite database" in serve_fails("--database", str(text), "--port", "0")
    assert text.read_text() == "not a database\n"

    other = tmp_path / "shop.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()
    before = other.read_bytes()
    message = serve_fails("--database", str(other), "--port", "0")
    assert "tables of another application (customers)" in message
    assert other.read_bytes() == before  # no Vizier table added

    assert "is a directory" in serve_fails("--database", str(tmp_path), "--port", "0")
    message = serve_fails("--database", str(tmp_path / "v.db"), "--host", "0.0.0.0",
                          "--port", "0", env={"VIZIER_KERAS_TOKEN": ""})
    assert "--insecure" in message and "token" in message
    assert "cannot be read" in serve_fails("--database", str(tmp_path / "v.db"),
                                           "--token-file", str(tmp_path / "missing"))

    first = server_process(tmp_path / "owned.db")
    url = first.wait_ready()
    assert "already owns" in serve_fails("--database", str(tmp_path / "owned.db"), "--port", "0")
    port = url.rsplit(":", 1)[1]
    assert "cannot listen" in serve_fails("--database", str(tmp_path / "v2.db"), "--port", port)


def test_a_token_from_a_file_any_scheme_case_and_an_open_health_check(tmp_path, server_process):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-from-a-file\n")
    proc = server_process(tmp_path / "v.db", "--token-file", str(token_file))
    url = proc.wait_ready()
    studies = f"{url}/v1/{PARENT}/studies"
    assert requests.get(studies, timeout=30).status_code == 401
    # Health is open to all, and says where and what only to a caller with the token.
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "SERVING"}
    assert requests.get(f"{url}/healthz", timeout=30, headers={
        "Authorization": "Bearer s3cret-from-a-file"}).json()["database"].endswith("v.db")
    for scheme in ("Bearer", "bearer", "BEARER"):
        answer = requests.get(studies, timeout=30,
                              headers={"Authorization": f"{scheme} s3cret-from-a-file"})
        assert answer.status_code == 200, scheme
    assert "s3cret" not in " ".join(proc.process.args)  # not on the command line
    assert (tmp_path / "v.db").stat().st_mode & 0o077 == 0


WORKER = textwrap.dedent("""
    import json, sys
    from vizier_keras.client import VizierClient, RetryPolicy
    url, study, worker, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    got = []
    with VizierClient(url, retry=RetryPolicy(initial_backoff=0.05), timeout=60) as c:
        for i in range(rounds):
            trial = c.suggest_trials(study, 1, client_id=worker).trials[0]
            got.append(trial["name"])
            c.add_trial_measurement(trial, {"loss": float(i)}, step_count=1)
            c.complete_trial(trial)
    print(json.dumps(got))
""")


def test_many_client_processes_lose_and_duplicate_no_trial(server_process):
    proc = server_process()
    url = proc.wait_ready()
    with client(url) as c:
        study = c.create_study(PARENT, "crowd", SPEC)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, study["name"], f"p{i}",
                                 "8"], stdout=subprocess.PIPE, cwd=ROOT) for i in range(4)]
    names = []
    for w in workers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0
        names.extend(json.loads(out))
    with client(url) as c:
        trials = c.list_trials(study)
    assert len(names) == len(set(names)) == 32
    assert {t["name"] for t in trials} == set(names)
    assert all(t["state"] == "SUCCEEDED" for t in trials)
    assert sorted(int(t["id"]) for t in trials) == list(range(1, 33))
    by_client: dict[str, int] = {}
    for t in trials:
        by_client[t["clientId"]] = by_client.get(t["clientId"], 0) + 1
    assert by_client == {f"p{i}": 8 for i in range(4)}


def test_threads_against_one_server_create_unique_trials(server_process):
    import concurrent.futures

    proc = server_process()
    url = proc.wait_ready()
    with client(url) as c:
        study = c.create_study(PARENT, "threads", SPEC)

        def work(worker: int) -> tuple[list[str], str]:
            suggested = []
            for _ in range(5):
                trial = c.suggest_trials(study, 1, client_id=f"t{worker}").trials[0]
                suggested.append(trial["name"])
                c.complete_trial(trial, {"loss": 1.0})
            return suggested, c.create_trial(study, {"x": 0.5, "n": 3})["name"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(8)))
        suggested = [n for names, _ in results for n in names]
        created = [name for _, name in results]
        # No trial went to two workers; a created trial may be handed out by a later suggest.
        assert len(suggested) == len(set(suggested)) == 40
        assert len(created) == len(set(created)) == 8
        trials = c.list_trials(study)
        assert {t["name"] for t in trials} == set(suggested) | set(created)
        assert sorted(int(t["id"]) for t in trials) == list(range(1, len(trials) + 1))


EMBEDDED_OWNER = textwrap.dedent("""
    import sys, time
    from vizier_keras.server.embedded import start_local_server
    server = start_local_server(sys.argv[1])
    print(server.url, server.pid, server.owned, flush=True)
    sys.stdin.readline()  # hold the server until told to exit
""")


def test_an_embedded_server_with_a_token_is_found_with_its_token(tmp_path):
    from vizier_keras.server.embedded import start_local_server

    database = tmp_path / "vizier.db"
    server = start_local_server(database, token="job-secret", timeout=120)
    try:
        found = start_local_server(database)  # another process of the job, say
        assert (found.url, found.token, found.owned) == (server.url, "job-secret", False)
        assert found.alive()
        studies = f"{server.url}/v1/{PARENT}/studies"
        assert requests.get(studies, timeout=30).status_code == 401
        with VizierClient(found.url, token=found.token) as c:
            assert c.list_studies(PARENT) == []
        assert (tmp_path / "vizier.db.server.json").stat().st_mode & 0o077 == 0
    finally:
        server.stop()


def test_embedded_server_is_shared_and_stops_with_its_owner(tmp_path):
    from vizier_keras.server.embedded import start_local_server

    database = tmp_path / "job" / "vizier.db"
    owner = subprocess.Popen([sys.executable, "-c", EMBEDDED_OWNER, str(database)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url, pid, owned = owner.stdout.readline().split()
        assert owned == "True"
        shared = start_local_server(database)
        assert (shared.url, shared.pid, shared.owned) == (url, int(pid), False)
        with client(shared.url) as c:
            c.create_study(PARENT, "shared", SPEC)
        shared.stop()  # not ours: a no-op
        assert shared.alive()
    finally:
        owner.stdin.close()
        owner.wait(30)
        owner.stdout.close()
    deadline = time.monotonic() + 30
    while shared.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not shared.alive()
    # Started again, the same file holds the same study.
    again = start_local_server(database)
    try:
        assert again.owned
        with client(again.url) as c:
            assert c.lookup_study(PARENT, "shared")
    finally:
        again.stop()
    assert not again.alive()


def test_embedded_start_refuses_bad_paths_and_reports_a_failed_start(tmp_path):
    from vizier_keras.server.embedded import start_local_server

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(errors.ValidationError, match="database"):
        start_local_server(blocker / "vizier.db")
    with pytest.raises(errors.ValidationError, match="directory"):
        start_local_server(tmp_path)
    # A file that is not SQLite: the server process fails, and the error shows its log.
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(errors.TransportError, match="did not start") as info:
        start_local_server(bogus, timeout=120)
    assert "database" in str(info.value).lower()


def test_gp_settings_reach_the_server_and_bad_ones_keep_it_from_starting(tmp_path):
    # benchmarks/quality.py --gp-settings passes them this way (the server's environment).
    from vizier_keras.server.embedded import start_local_server

    with pytest.raises(errors.TransportError, match="did not start") as info:
        start_local_server(tmp_path / "bad.db", timeout=120,
                           env={"VIZIER_KERAS_GP_SETTINGS": '{"ucb_coefficent": 1.0}'})
    assert "--gp-settings" in str(info.value) and "'ucb_coefficent'" in str(info.value)
    server = start_local_server(tmp_path / "good.db", timeout=120,
                                env={"VIZIER_KERAS_GP_SETTINGS": '{"ucb_coefficient": 0.5}'})
    try:
        assert requests.get(f"{server.url}/healthz", timeout=10).json()["status"] == "SERVING"
        log = (tmp_path / "good.db.server.log").read_text()
        assert 'GP settings {"ucb_coefficient": 0.5}, not the shipped ones' in log
    finally:
        server.stop()


def test_embedded_start_without_the_local_extra_says_which_extra_before_starting(tmp_path):
    # The light install: OSS Vizier and JAX cannot be imported. Hidden here by an import hook
    # in a fresh process; the tuner's path (connect with no project) must end in the error
    # naming [local], with no server process started and no database made.
    script = textwrap.dedent(f"""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("jax", "vizier"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
        from vizier_keras import errors
        from vizier_keras.connect import connect
        try:
            connect(None, None, directory={str(tmp_path / "runs")!r}, environ={{}})
        except errors.MissingExtraError as e:
            assert isinstance(e, ImportError) and e.extra == "local", e
            assert e.missing == ["vizier", "jax"], e.missing
            print(e)
        else:
            raise AssertionError("connected without the [local] extra")
        from vizier_keras import cli
        assert cli.main(["serve", "--database", {str(tmp_path / "runs" / "cli.db")!r}]) == 2
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "needs the [local] extra" in out.stdout
    assert "pip install 'vizier-keras[local]'" in out.stdout
    assert "no module 'vizier', 'jax'" in out.stdout
    assert "vizier-keras serve needs the [local] extra" in out.stderr
    assert "or give project_id" in out.stdout and "project_id" not in out.stderr
    runs = tmp_path / "runs"
    assert not list(runs.glob("*.db")) and not list(runs.glob("*.log")), list(runs.iterdir())


def test_a_seeded_server_repeats_its_suggestions_exactly(tmp_path):
    # benchmarks/comparison.py seeds the server so that a run repeats: the same seed, study name
    # and history give the same trials (the five seed trials and the first GP suggestion after
    # them); another seed, or another study name, gives others.
    from concurrent.futures import ThreadPoolExecutor

    def run(where: str, seed: str, studies: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
        (tmp_path / where).mkdir()
        proc = ServerProcess(tmp_path / where / "vizier.db", "--seed", seed)
        suggested: dict[str, list[dict[str, Any]]] = {}
        try:
            with VizierClient(proc.wait_ready(), retry=FAST_RETRY, timeout=120) as c:
                for name, count in studies.items():
                    study = c.create_study(PARENT, name,
                                           {**SPEC, "algorithm": "ALGORITHM_UNSPECIFIED"})
                    suggested[name] = []
                    for _ in range(count):
                        trial = c.suggest_trials(study, 1, client_id="w", timeout=300).trials[0]
                        values = {p["parameterId"]: p["value"] for p in trial["parameters"]}
                        loss = (float(values["x"]) - 0.3) ** 2 + 0.01 * float(values["n"])
                        c.complete_trial(trial["name"], {"loss": loss})
                        suggested[name].append(values)
            return suggested
        finally:
            proc.stop()

    with ThreadPoolExecutor(3) as pool:
        a, b, other_seed = pool.map(run, "abc", ("7", "7", "8"),
                                    ({"s": 6, "t": 3}, {"s": 6}, {"s": 3}))
    assert a["s"] == b["s"]
    # The centre first, then the seed's own quasi-random draws.
    assert other_seed["s"][1:] != a["s"][1:3] and a["t"][1:] != a["s"][1:3]
