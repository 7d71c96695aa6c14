"""Soak: many workers on one `vizier-keras serve` for minutes while faults are injected.

Run:  python benchmarks/soak.py [--workers 8] [--minutes 2] [--kill-every 20] [--hostile 10000]

The loop users run: N worker processes, each with its own client id, suggest a trial, add two
measurements, complete it, and go on; the client library's retries ride out the faults. Faults,
all at once: the server is killed (SIGKILL) every ``--kill-every`` seconds and restarted on the
same port and database; a thread opens connections and drops them mid-request; another sends
hostile requests (a fixed corpus of broken JSON, wrong types, unknown fields, huge numbers, lone
surrogates, id aliases) at a second study. Afterwards, from the database as the restarted server
serves it:

* lost: a completion a worker saw acknowledged that the study does not hold as SUCCEEDED with
  the value sent;
* duplicated: a trial handed to two workers;
* 5xx: hostile requests answered with a server error; hangs: requests with no answer in 30 s.

Prints a table and writes the raw numbers as JSON (``results/soak.json``). Issue 32's targets:
0 lost or undone, 0 5xx and 0 hangs over 10,000 hostile requests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import _common

PARENT = "projects/soak/locations/local"
SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}},
                       {"parameterId": "n", "integerValueSpec": {"minValue": "1",
                                                                 "maxValue": "9"}}],
        "algorithm": "RANDOM_SEARCH"}


def hostile_corpus(study: str) -> list[tuple[str, str, bytes]]:
    """(method, path, body) of requests that must each get a 4xx."""
    trials = f"{study}/trials"
    bodies = [b"{", b"[" * 5000 + b"]" * 5000, b'{"suggestionCount": 1, "clientId": "\\ud800"}',
              b'{"suggestionCount": 1e999, "clientId": "w"}', b'{"suggestionCount": "9' +
              b"9" * 4400 + b'", "clientId": "w"}', b'{"suggestionCount": 1, "clientId": "a/b"}',
              b'{"unknown": 1}', b"null", b"\xff\xfe", b'{"suggestionCount": -1}']
    out = [("POST", f"/v1/{trials}:suggest", b) for b in bodies]
    out += [("POST", f"/v1/{trials}", b'{"parameters": [{"parameterId": "x", "value": '
             + v + b"}]}") for v in (b"1e400", b'"a"', b"NaN", b"[]", b"2")]
    out += [("GET", f"/v1/{trials}/{alias}", b"") for alias in ("01", "+1", "1_0", "%D9%A1")]
    out += [("POST", f"/v1/{PARENT}/studies", b'{"displayName": "d", "studySpec": '
             b'{"metrics": [{"metricId": "m", "goal": 7}]}}'),
            ("DELETE", f"/v1/{PARENT}/studies/0123", b""), ("PATCH", f"/v1/{study}", b"{}")]
    return out


def worker(url: str, study: str, worker_id: int, end: float, queue: Any) -> None:
    from vizier_keras.client import RetryPolicy, VizierClient
    from vizier_keras.errors import VizierError

    got: list[str] = []
    acked: dict[str, float] = {}
    failures = 0
    retry = RetryPolicy(max_attempts=30, initial_backoff=0.2, max_backoff=2.0, deadline=60)
    with VizierClient(url, retry=retry, timeout=(5, 30)) as client:
        n = 0
        while time.time() < end:
            n += 1
            try:
                trial = client.suggest_trials(study, 1, client_id=f"soak-{worker_id}").trials[0]
                if trial["name"] not in got:
                    got.append(trial["name"])
                for step in (1, 2):
                    client.add_trial_measurement(trial, {"loss": n + step / 10},
                                                 step_count=step)
                value = worker_id * 1e6 + n
                client.complete_trial(trial, {"loss": value})
                acked[trial["name"]] = value
            except VizierError:
                failures += 1  # retries spent; the next round asks again
    queue.put({"worker": worker_id, "handed": got, "acked": acked, "failures": failures})


class Server:
    """``vizier-keras serve`` on a fixed port, killed and restarted on demand."""

    def __init__(self, database: str, port: int) -> None:
        self.database, self.port = database, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = open(database + ".log", "ab")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vizier_keras.cli", "serve", "--database", self.database,
             "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        import requests

        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def table(report: dict[str, Any]) -> str:
    """One row: the load, the faults, and what was lost, duplicated, refused or hung."""
    args = report["args"]
    return _common.table(
        ["workers", "minutes", "kills", "dropped", "completions", "lost", "duplicated",
         "hostile requests", "5xx", "hangs"],
        [[args["workers"], args["minutes"], report["kills"], report["dropped_connections"],
          report["completions_acknowledged"], report["lost"], report["duplicated"],
          sum(report["hostile_statuses"].values()), report["hostile_5xx"], report["hangs"]]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--hostile", type=int, default=10_000,
                        help="hostile requests to send over the run")
    parser.add_argument("--out", default=os.path.join(_common.RESULTS, "soak.json"))
    args = parser.parse_args()

    import requests

    from vizier_keras.client import VizierClient

    database = os.path.join(tempfile.mkdtemp(), "soak.db")
    server = Server(database, free_port())
    server.start()
    with VizierClient(server.url) as client:
        study = client.create_study(PARENT, "soak", SPEC)["name"]
        target = client.create_study(PARENT, "hostile-target", SPEC)["name"]
    window = args.minutes * 60
    end = time.time() + window
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=worker, args=(server.url, study, i, end, queue))
               for i in range(args.workers)]
    for p in workers:
        p.start()

    statuses: dict[str, int] = {}
    hangs = kills = drops = 0
    stop = threading.Event()

    def hostile() -> None:
        nonlocal hangs
        corpus = hostile_corpus(target)
        session = requests.Session()
        pause = window / max(args.hostile, 1)
        began = time.time()
        for i in range(args.hostile):
            if stop.is_set():
                break
            method, path, body = corpus[i % len(corpus)]
            try:
                answer = session.request(method, server.url + path, data=body or None,
                                         timeout=30)
                key = str(answer.status_code)
            except requests.Timeout:
                hangs += 1
                key = "hang"
            except requests.ConnectionError:
                key = "no connection (server restarting)"
            statuses[key] = statuses.get(key, 0) + 1
            time.sleep(max(0.0, began + (i + 1) * pause - time.time()))  # spread over the run

    def dropper() -> None:
        nonlocal drops
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
                    s.sendall(f"POST /v1/{study}/trials:suggest HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 50\r\n\r\n{\"suggest".encode())
                drops += 1
            except OSError:
                pass
            time.sleep(0.2)

    threads = [threading.Thread(target=hostile), threading.Thread(target=dropper)]
    for t in threads:
        t.start()
    while time.time() < end - args.kill_every / 2:
        time.sleep(min(args.kill_every, max(0.0, end - time.time())))
        if time.time() >= end:
            break
        server.kill()
        kills += 1
        server.start()
    results = [queue.get() for _ in workers]
    for p in workers:
        p.join()
    stop.set()
    for t in threads:
        t.join()
    with VizierClient(server.url) as client:
        stored = {t["name"]: t for t in client.list_trials(study)}
    server.kill()
    acked = {name: value for r in results for name, value in r["acked"].items()}
    lost = [name for name, value in acked.items()
            if stored.get(name, {}).get("state") != "SUCCEEDED"
            or stored[name]["finalMeasurement"]["metrics"][0].get("value", 0.0) != value]
    handed = [name for r in results for name in r["handed"]]
    duplicated = len(handed) - len(set(handed))
    server_errors = sum(n for key, n in statuses.items() if key.startswith("5"))
    report = {"machine": _common.machine(), "args": vars(args), "kills": kills,
              "dropped_connections": drops, "completions_acknowledged": len(acked),
              "lost": len(lost), "duplicated": duplicated,
              "worker_failures": sum(r["failures"] for r in results),
              "hostile_statuses": statuses, "hostile_5xx": server_errors, "hangs": hangs,
              "study_trials": len(stored)}
    report["targets_met"] = not lost and not duplicated and not server_errors and not hangs
    _common.save(report, args.out)
    print(table(report))
    print("hostile statuses:", json.dumps(statuses, sort_keys=True))
    print("targets (0 lost, 0 duplicated, 0 5xx, 0 hangs):",
          "met" if report["targets_met"] else "NOT met")


if __name__ == "__main__":
    main()
