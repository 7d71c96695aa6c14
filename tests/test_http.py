"""HTTP framing of the embedded server, with raw sockets: chunked bodies honoured (no request
smuggled behind one), malformed lengths refused, stalled connections closed while others are
served, bodies bounded, and every method answered in JSON."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import unique

PARENT = "projects/http/locations/local"
SPEC = {"metrics": [{"metricId": "loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameterId": "x", "doubleValueSpec": {"maxValue": 1}}],
        "algorithm": "RANDOM_SEARCH"}


@pytest.fixture
def server(tmp_path: Any) -> Iterator[Any]:
    from vizier_keras.server.app import VizierHTTPServer
    from vizier_keras.server.service import VizierService

    service = VizierService(tmp_path / "v.db")
    http = VizierHTTPServer(service, token="t0ken", channel_timeout=2.0).start()
    try:
        yield http
    finally:
        http.shutdown()
        service.close()


AUTH = {"Authorization": "Bearer t0ken"}


def raw(http: Any, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; what comes back until it closes or ``wait``."""
    with socket.create_connection((http.host, http.port), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_request_hidden_in_a_chunked_body_is_not_run(server):
    study = requests.post(f"{server.url}/v1/{PARENT}/studies", headers=AUTH, timeout=30,
                          json={"displayName": unique(), "studySpec": SPEC}).json()["name"]
    smuggled = (f"DELETE /v1/{study} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n"
                "Content-Length: 0\r\n\r\n").encode()
    body = b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n"
    # TE.CL: a server reading Content-Length (4 bytes) would run the DELETE as a second request.
    raw(server, (f"POST /v1/{PARENT}/studies:lookup HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer t0ken\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Length: 4\r\n\r\n").encode() + body)
    assert requests.get(f"{server.url}/v1/{study}", headers=AUTH, timeout=30).status_code == 200


def test_a_chunked_request_is_read_whole(server):
    body = b'{"displayName": "%s", "studySpec": {"metrics": [{"metricId": "m", "goal": 1}], ' \
           b'"parameters": [{"parameterId": "x", "doubleValueSpec": {"maxValue": 1}}], ' \
           b'"algorithm": "RANDOM_SEARCH"}}' % (
               unique().encode())
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 10]), body[i:i + 10])
                       for i in range(0, len(body), 10)) + b"0\r\n\r\n"
    answer = raw(server, (f"POST /v1/{PARENT}/studies HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer t0ken\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n").encode() + chunked)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


@pytest.mark.parametrize("length", ["-1", "abc", "1, 2", "99999999999999999999999"])
def test_malformed_lengths_are_refused_at_once(server, length):
    started = time.monotonic()
    answer = raw(server, (f"POST /v1/{PARENT}/studies HTTP/1.1\r\nHost: x\r\n"
                          f"Content-Length: {length}\r\n\r\n{{}}").encode())
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert time.monotonic() - started < 5


def test_stalled_connections_are_closed_and_others_are_served_meanwhile(server):
    stalled = []
    for _ in range(100):  # many more than the server's worker threads
        s = socket.create_connection((server.host, server.port), timeout=10)
        s.sendall(f"POST /v1/{PARENT}/studies HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 100\r\n\r\n{".encode())  # a body that never comes
        stalled.append(s)
    try:
        answer = requests.get(f"{server.url}/v1/{PARENT}/studies", headers=AUTH, timeout=10)
        assert answer.status_code == 200
        time.sleep(4.5)  # the server's channel_timeout is 2 s; it checks every few seconds
        closed = 0
        for s in stalled:
            s.settimeout(5)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == len(stalled)
    finally:
        for s in stalled:
            s.close()


def test_an_unauthenticated_body_is_refused_and_a_huge_one_is_too_large(server):
    big = b"x" * (8 * 1024 * 1024)
    answer = requests.post(f"{server.url}/v1/{PARENT}/studies", data=big, timeout=60)
    assert answer.status_code == 401
    too_big = b"x" * (33 * 1024 * 1024)
    answer = requests.post(f"{server.url}/v1/{PARENT}/studies", data=too_big, headers=AUTH,
                           timeout=60)
    assert answer.status_code == 413


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "TRACE", "BREW"])
def test_every_method_is_answered_in_json(server, method):
    answer = requests.request(method, f"{server.url}/v1/{PARENT}/studies", headers=AUTH,
                              timeout=30)
    assert answer.status_code == 404
    if method != "HEAD":
        assert answer.json()["error"]["status"] == "NOT_FOUND"
    assert answer.headers["Content-Type"].startswith("application/json")
