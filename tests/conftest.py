from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

# Quiet TensorFlow's C++ start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import requests
from hypothesis import settings
from isolated import JAX_CACHE_VARIABLE
from scripted_server import ScriptedServer
from vertex_shaped import VertexShapedSession

from vizier_keras.client import PollPolicy, RetryPolicy, VizierClient

# Property tests: 150 examples by default; HYPOTHESIS_PROFILE=thorough for a long hunt.
settings.register_profile("default", max_examples=150)
settings.register_profile("thorough", max_examples=3000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# What a database error's text looks like (SQLAlchemy quotes the statement after "[SQL:").
SQL = re.compile(r"\[SQL:|\bSELECT \w|\bINSERT INTO\b|\bUPDATE \w+ SET\b")

PARENT = "projects/p/locations/us-central1"
STUDY = f"{PARENT}/studies/7"
TRIAL = f"{STUDY}/trials/1"

# Small, fast policies: tests exercise the paths, not the waits.
FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05,
                         exhausted_initial_backoff=0.01, deadline=30)
FAST_POLL = PollPolicy(initial_delay=0.01, max_delay=0.05, timeout=10)

_MADE_JAX_CACHE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # One JAX compilation cache for every process this run starts (run_python's children and
    # the servers of processes.ServerProcess), as the user's cache serves all their servers: a
    # program compiled by one test is loaded, not compiled, by the next. pytest-xdist starts
    # its workers after this hook, so they inherit the variable; the process that made the
    # directory removes it.
    if not os.environ.get(JAX_CACHE_VARIABLE):
        os.environ[JAX_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="vizier-keras-test-jax-")
        config.stash[_MADE_JAX_CACHE] = os.environ[JAX_CACHE_VARIABLE]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = config.stash.get(_MADE_JAX_CACHE, None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded server process on a loopback port, for the whole session (as in use: its
    own process, without TensorFlow)."""
    from processes import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("vizier") / "vizier.db")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def in_process_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded service in this process, on a loopback port, for the whole session: the
    same HTTP server and service as ``vizier-keras serve``, without a process start (the fast
    lane's server). Its algorithms run in this process, beside TensorFlow: the metric-blind
    ones and the evolutionary ones only; the GP algorithms need :func:`local_server`."""
    from vizier_keras.server.app import VizierHTTPServer
    from vizier_keras.server.service import VizierService

    database = tmp_path_factory.mktemp("in-process") / "vizier.db"
    service = VizierService(database)
    http = VizierHTTPServer(service).start()
    try:
        yield SimpleNamespace(url=http.url, database=database)
    finally:
        http.shutdown()
        service.close()


@pytest.fixture(params=["in-process", pytest.param("process", marks=pytest.mark.slow)])
def served(request: pytest.FixtureRequest) -> Any:
    """The service a server test runs against: in this process (the fast lane) and as a real
    ``vizier-keras serve`` process (the full suite). One suite over both, as Open Source
    Vizier's clients test runs over its local and its remote service."""
    return request.getfixturevalue(
        "in_process_server" if request.param == "in-process" else "local_server")


@pytest.fixture(params=["plain", "vertex-shaped"])
def wire_shape(request: pytest.FixtureRequest) -> str:
    """How the server's answers reach our code: as it writes them, or re-encoded by the v1
    protobuf messages as Vertex AI writes them, with a field no one knows in every object
    (:mod:`vertex_shaped`). One suite over both, as Optuna runs one over every storage."""
    return str(request.param)


def shaped_session(wire_shape: str) -> requests.Session | None:
    """The session that gives answers the shape ``wire_shape`` names (None: the plain one)."""
    return VertexShapedSession(inject=True) if wire_shape == "vertex-shaped" else None


@pytest.fixture
def vizier(served: Any, wire_shape: str) -> Iterator[VizierClient]:
    """A client of the session's embedded service, in process and as a process, over both
    wire shapes."""
    with VizierClient(served.url, session=shaped_session(wire_shape), retry=FAST_RETRY,
                      poll=FAST_POLL, timeout=120) as c:
        yield c


def unique(prefix: str = "study") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[VizierClient]:
    with VizierClient(server.url, retry=FAST_RETRY, poll=FAST_POLL, timeout=5) as c:
        yield c
