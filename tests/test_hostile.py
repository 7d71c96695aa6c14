"""The service against hostile input and a failing database, in process: every bad request is a
4xx naming what is wrong (never a 5xx, never SQL in a message); a full disk is
RESOURCE_EXHAUSTED and the service recovers when space is back; a database locked by another
process is UNAVAILABLE (clients retry it); resource ids have one spelling each."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import SQL, unique

PARENT = "projects/hostile/locations/local"
SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"minValue": 0, "maxValue": 1}}],
        "algorithm": "RANDOM_SEARCH"}


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[str, Any]]:
    from vizier_keras.server.app import VizierHTTPServer
    from vizier_keras.server.service import VizierService

    service = VizierService(tmp_path / "v.db")
    http = VizierHTTPServer(service).start()
    try:
        yield http.url, service
    finally:
        http.shutdown()
        service.close()


def post(url: str, path: str, body: Any = None, data: bytes | None = None) -> requests.Response:
    return requests.post(f"{url}/v1/{path}", json=body, data=data, timeout=30)


def new_study(url: str) -> dict[str, Any]:
    answer = post(url, f"{PARENT}/studies", {"displayName": unique(), "studySpec": SPEC})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_hostile_bodies_are_client_errors(served):
    url, _ = served
    study = new_study(url)["name"]
    deep = b"[" * 5000 + b"]" * 5000
    cases = [
        (f"{study}/trials:suggest", None, deep),
        (f"{study}/trials:suggest", None, b'{"suggestionCount": 1, "clientId": "\\ud800"}'),
        (f"{study}/trials:suggest", {"suggestionCount": 1, "clientId": "a/b"}, None),
        (f"{study}/trials:suggest", {"suggestionCount": 1, "clientId": "c" * 10_000}, None),
        (f"{study}/trials:suggest", {"suggestionCount": 10**400, "clientId": "w"}, None),
        (f"{study}/trials:suggest", {"suggestionCount": "9" * 4400, "clientId": "w"}, None),
        (f"{study}/trials", {"parameters": [{"parameterId": "x", "value": 10**400}]}, None),
        (f"{PARENT}/studies", {"displayName": "d", "studySpec": {**SPEC, "parameters": [
            {"parameterId": f"p{i}", "doubleValueSpec": {"maxValue": 1}}
            for i in range(1001)]}}, None),
        (f"{PARENT}/studies", {"displayName": "d", "studySpec": {**SPEC, "metrics": [
            {"metricId": "m" * 100_000, "goal": "MINIMIZE"}]}}, None),
        (f"{PARENT}/studies", None, b'{"displayName": "d", "studySpec": {"metrics": '
         b'[{"metricId": "loss", "goal": 1e400}]}}'),
        (f"{study}/trials", None, b'{"parameters": [{"parameterId": "x", "value": NaN}]}'),
    ]
    for path, body, data in cases:
        answer = post(url, path, body, data)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
        assert not SQL.search(answer.text)


def test_resource_ids_have_one_spelling(served):
    url, _ = served
    study = new_study(url)
    trial = post(url, f"{study['name']}/trials", {"parameters": [
        {"parameterId": "x", "value": 0.5}]}).json()
    assert trial["name"].endswith("/trials/1")
    assert requests.get(f"{url}/v1/{trial['name']}", timeout=30).status_code == 200
    for alias in ("01", "+1", "1_0", "\u0661", "0", "-1", "1.0"):
        answer = requests.get(f"{url}/v1/{study['name']}/trials/{alias}", timeout=30)
        assert answer.status_code == 404, (alias, answer.text)
    for parent in ("projects/p..q/locations/l", "projects/p/locations/a~b",
                   "projects/%00/locations/l", "projects/" + "p" * 100 + "/locations/l"):
        answer = requests.get(f"{url}/v1/{parent}/studies", timeout=30)
        assert answer.status_code == 400, (parent, answer.text)
    answer = post(url, f"{PARENT}/studies", {"displayName": "a\x00b", "studySpec": SPEC})
    assert answer.status_code == 400 and "displayName" in answer.text
    op = post(url, f"{study['name']}/trials:suggest", {"suggestionCount": 1, "clientId": "w"})
    name = op.json()["name"]
    assert requests.get(f"{url}/v1/{name}", timeout=30).status_code == 200
    number, client = name.rsplit("/suggest-", 1)[1].split("-", 1)
    for alias in (f"0{number}", f"{number}-{client}=="):
        bad = name.rsplit("/", 1)[0] + f"/suggest-{alias}"
        if "-" not in alias:
            bad += f"-{client}"
        assert requests.get(f"{url}/v1/{bad}", timeout=30).status_code == 404, bad


def test_a_full_disk_is_resource_exhausted_and_the_service_recovers(served):
    url, service = served
    study = new_study(url)["name"]
    post(url, f"{study}/trials", {"parameters": [{"parameterId": "x", "value": 0.1}]})
    # A real SQLITE_FULL from SQLite itself: the database may not grow past its current size.
    with service._ds._lock:
        pages = service._ds._connection.exec_driver_sql("PRAGMA page_count").scalar()
        service._ds._connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    statuses = set()
    for i in range(200):
        answer = post(url, f"{study}/trials", {"parameters": [
            {"parameterId": "x", "value": i / 200}]})
        statuses.add(answer.status_code)
        if answer.status_code != 200:
            assert answer.status_code == 429, answer.text
            assert answer.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
            assert "disk is full" in answer.json()["error"]["message"]
            break
    assert 429 in statuses
    # Reads go on while the disk is full.
    assert requests.get(f"{url}/v1/{study}/trials", timeout=30).status_code == 200
    assert requests.get(f"{url}/healthz", timeout=30).json()["status"] == "SERVING"
    with service._ds._lock:
        service._ds._connection.exec_driver_sql("PRAGMA max_page_count = 1073741823")
    # Space is back: writes work again, without a restart.
    answer = post(url, f"{study}/trials", {"parameters": [{"parameterId": "x", "value": 0.9}]})
    assert answer.status_code == 200, answer.text


def test_a_database_locked_by_another_process_is_unavailable(served, tmp_path):
    url, _ = served
    study = new_study(url)["name"]
    other = sqlite3.connect(tmp_path / "v.db", timeout=1, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process's write transaction, held
    try:
        answer = post(url, f"{study}/trials", {"parameters": [
            {"parameterId": "x", "value": 0.5}]})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["status"] == "UNAVAILABLE"
        assert "locked" in answer.json()["error"]["message"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    answer = post(url, f"{study}/trials", {"parameters": [{"parameterId": "x", "value": 0.5}]})
    assert answer.status_code == 200, answer.text
