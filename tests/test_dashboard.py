"""The live dashboard in a real headless Chromium: it shows a study's trials, follows a running
study, writes nothing, and asks for its token.

The browser is Debian's ``chromium`` (``.ci/run`` installs it) driven by Playwright's Python
package; a machine without it fails these tests rather than skipping them.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import FAST_POLL, FAST_RETRY
from processes import ServerProcess
from results_study import GOOD, make_study

from vizier_keras.client import VizierClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
PARENT = "projects/local/locations/local"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the machine's notes say: without these, Chromium tries Google's hosts at every start.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


class DashboardProcess:
    """``vizier-keras dashboard`` in a child process; :attr:`url` once it listens."""

    def __init__(self, tmp: pathlib.Path, *args: str) -> None:
        self.ready = tmp / f"dashboard-{time.monotonic_ns()}.json"
        self.log = open(tmp / "dashboard.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vizier_keras.cli", "dashboard", "--port", "0",
             "--ready-file", str(self.ready), *args], cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the dashboard did not start: " + (
                    tmp / "dashboard.log").read_text())
            time.sleep(0.05)
        self.url = json.loads(self.ready.read_text())["url"]
        self.root = self.url.rsplit("/dashboard", 1)[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM, ("these tests need Debian's chromium (apt-get install chromium, as .ci/run "
                      "does); they do not skip")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with a study (one trial still running), and a dashboard on its database."""
    tmp = tmp_path_factory.mktemp("dashboard")
    server = ServerProcess(tmp / "vizier.db")
    client = VizierClient(server.wait_ready(), retry=FAST_RETRY, poll=FAST_POLL)
    made = make_study(client, PARENT, "live-study")
    board = DashboardProcess(tmp, "--database", str(tmp / "vizier.db"), "--refresh", "0.5")
    try:
        yield {"client": client, "made": made, "board": board, "tmp": tmp}
    finally:
        board.stop()
        client.close()
        server.stop()


def page_text(page: Any, url: str, wanted: str, timeout: float = 60) -> str:
    """The page's text once it contains ``wanted`` (the page polls on its own)."""
    page.goto(url)
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = page.inner_text("body")
        if wanted in text:
            return str(text)
        page.wait_for_timeout(250)
    raise AssertionError(f"{wanted!r} never showed at {url}; the page said:\n{text[:2000]}")


def test_the_page_shows_the_trials_and_follows_the_study(browser, running):
    made, client, board = running["made"], running["client"], running["board"]
    page = browser.new_page()
    home = page_text(page, board.url, "live-study")
    assert "live-study" in home
    trials = len(made["good"]) + len(made["stopped"]) + 2
    text = page_text(page, f"{board.url}/studies/0/trials", f"{trials} Trials")
    assert text.count("Complete") >= GOOD + 2 and "Fail" in text and "Running" in text
    assert "vizier_trial" in text  # the Vizier id, for the Optuna number beside it
    # A worker finishes the running trial and starts another: the open page shows both.
    client.complete_trial(client.get_trial(f"{made['study']['name']}/trials/{made['active']}"),
                          {"val_accuracy": 0.99})
    client.suggest_trials(made["study"]["name"], client_id="late-worker")
    text = page_text(page, f"{board.url}/studies/0/trials", f"{trials + 1} Trials")
    assert "Running" in text
    best = page_text(page, f"{board.url}/studies/0", "0.99")
    assert "History" in best
    page.close()


def test_nothing_the_page_offers_writes(running):
    board = running["board"]
    before = requests.get(f"{board.root}/api/studies", timeout=10).json()
    for method, path in [("POST", "/api/studies"), ("DELETE", "/api/studies/0"),
                         ("PUT", "/api/studies/0/note"), ("POST", "/api/trials/0/tell"),
                         ("POST", "/api/studies/0/rename")]:
        answer = requests.request(method, board.root + path, json={"x": 1}, timeout=10)
        assert answer.status_code == 405, (method, path, answer.text)
    assert requests.get(f"{board.root}/api/studies", timeout=10).json() == before
    client = running["client"]
    assert client.get_study(running["made"]["study"]["name"])["displayName"] == "live-study"


def test_a_token_guards_the_page(browser, running):
    tmp = running["tmp"]
    guarded = DashboardProcess(tmp, "--database", str(tmp / "vizier.db"),
                               "--dashboard-token", "s3cret-token")
    try:
        assert requests.get(f"{guarded.root}/api/studies", timeout=10).status_code == 401
        assert requests.get(f"{guarded.root}/api/studies", timeout=10,
                            headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(f"{guarded.root}/api/studies", timeout=10,
                            headers={"Authorization": "Bearer s3cret-token"}).ok
        page = browser.new_page()
        page.goto(guarded.url)
        assert "live-study" not in page.inner_text("body")
        # Opened once with the token, the page (and its API calls) carry on with the cookie.
        text = page_text(page, f"{guarded.url}?token=s3cret-token", "live-study")
        assert "live-study" in text
        page.close()
    finally:
        guarded.stop()


def test_beyond_loopback_without_a_token_is_refused(tmp_path, running):
    done = subprocess.run(
        [sys.executable, "-m", "vizier_keras.cli", "dashboard", "--database",
         str(running["tmp"] / "vizier.db"), "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--dashboard-token" in done.stderr
