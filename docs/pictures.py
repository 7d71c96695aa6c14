"""Make the README's pictures of a study: its learning curves (a plot) and the live dashboard
(a screenshot in headless Chromium).

    python examples/quickstart.py                      # a real study: runs/quickstart/vizier.db
    python docs/pictures.py --database runs/quickstart/vizier.db --study quickstart

Needs the [dashboard] extra, Playwright's Python package and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from vizier_keras.results import load_study
from vizier_keras.results.plots import save_plot

HERE = pathlib.Path(__file__).resolve().parent


def dashboard_screenshot(database: str, study: str, out: pathlib.Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        ready = pathlib.Path(tmp) / "ready.json"
        board = subprocess.Popen([sys.executable, "-m", "vizier_keras.cli", "dashboard",
                                  "--database", database, "--study", study, "--port", "0",
                                  "--ready-file", str(ready)])
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if board.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the dashboard did not start")
                time.sleep(0.1)
            url = json.loads(ready.read_text())["url"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{url}/studies/0")
                page.wait_for_selector(".js-plotly-plot", timeout=60_000)
                page.wait_for_timeout(3000)  # the plots draw after the data arrives
                page.screenshot(path=str(out))
                browser.close()
        finally:
            board.terminate()
            board.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--out", default=str(HERE / "images"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = load_study(args.study, database=args.database)
    print("wrote", save_plot(results, "curves", out / "curves.png"))
    dashboard_screenshot(args.database, args.study, out / "dashboard.png")
    print("wrote", out / "dashboard.png")


if __name__ == "__main__":
    main()
