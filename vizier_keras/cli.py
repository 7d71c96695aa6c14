"""The ``vizier-keras`` command.

Where the studies are (every command but ``serve``)::

    --database PATH                   a database file of the embedded service (read directly)
    --endpoint URL [--token T]        a Vizier server ($VIZIER_ENDPOINT; $VIZIER_KERAS_TOKEN)
    --project P [--region R]          Vertex AI Vizier (Application Default Credentials)

Commands::

    studies                           the studies, with their trial counts and best values
    trials STUDY [--format table|csv|json]
    best STUDY [-n N] [--format table|json]
    export STUDY -o FILE.csv|FILE.json [--measurements]
    delete STUDY --yes
    plot STUDY --kind history|curves|parallel|importance|pareto -o FILE.png|FILE.html
    dashboard [--study STUDY ...] [--host H] [--port P] [--refresh S]
    serve --database PATH [...]       run a Vizier server (needs the [local] extra)

STUDY is a display name, a study id or a resource name. Errors are one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from vizier_keras import __version__
from vizier_keras.errors import VizierError

__all__ = ["main"]

_FORMATS = ("table", "csv", "json")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        return _serve(args[1:])
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(options.run(options) or 0)
    except (VizierError, ValueError, OSError) as e:
        print(f"vizier-keras {options.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vizier-keras",
                                     description="Hyperparameter tuning for Keras on Vizier: "
                                                 "look at studies, or serve them.")
    parser.add_argument("--version", action="version", version=f"vizier-keras {__version__}")
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group("where the studies are")
    group.add_argument("--database", help="a database file of the embedded service")
    group.add_argument("--endpoint", help="a Vizier REST endpoint (default: $VIZIER_ENDPOINT)")
    group.add_argument("--token", default=os.environ.get("VIZIER_KERAS_TOKEN"),
                       help="the endpoint's bearer token (default: $VIZIER_KERAS_TOKEN)")
    group.add_argument("--token-file", help="read the endpoint's token from this file")
    group.add_argument("--project", help="a Google Cloud project: Vertex AI Vizier")
    group.add_argument("--region", help="its region (default us-central1; 'local' for an "
                                        "endpoint)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[where], help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("studies", _studies, "list the studies")
    sub = command("trials", _trials, "list a study's trials")
    sub.add_argument("study")
    sub.add_argument("--format", choices=_FORMATS, default="table")
    sub = command("best", _best, "the best trials (the Pareto front first for several "
                                 "objectives)")
    sub.add_argument("study")
    sub.add_argument("-n", type=int, default=1, help="how many (default 1)")
    sub.add_argument("--format", choices=("table", "json"), default="table")
    sub = command("export", _export, "write a study's trials (or measurements) to CSV or JSON")
    sub.add_argument("study")
    sub.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.json")
    sub.add_argument("--measurements", action="store_true",
                     help="a row per reported metric instead of a row per trial")
    sub = command("delete", _delete, "delete a study and its trials")
    sub.add_argument("study")
    sub.add_argument("--yes", action="store_true", help="really delete")
    sub = command("plot", _plot, "plot a study to an image or an interactive page")
    sub.add_argument("study")
    sub.add_argument("--kind", required=True,
                     choices=("history", "curves", "parallel", "importance", "pareto"))
    sub.add_argument("-o", "--output", required=True, help="FILE.png, .svg, .pdf or .html")
    sub = command("dashboard", _dashboard, "a live, read-only web dashboard of the studies")
    sub.add_argument("--study", action="append", default=[],
                     help="show only this study (repeatable; default: all)")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    sub.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    sub.add_argument("--dashboard-token", default=os.environ.get("VIZIER_KERAS_DASHBOARD_TOKEN"),
                     help="require this token of the page's visitors (needed beyond loopback; "
                          "default: $VIZIER_KERAS_DASHBOARD_TOKEN)")
    sub.add_argument("--insecure", action="store_true",
                     help="allow --host beyond loopback without a token")
    sub.add_argument("--refresh", type=float, default=5.0,
                     help="seconds between reads of the studies (default 5)")
    sub.add_argument("--ready-file", help=argparse.SUPPRESS)
    commands.add_parser("serve", help="run a Vizier server (needs the [local] extra; "
                                      "vizier-keras serve --help)", add_help=False)
    return parser


def _serve(args: list[str]) -> int:
    from vizier_keras.errors import MissingExtraError
    from vizier_keras.server.embedded import require_local_extra

    try:
        require_local_extra("vizier-keras serve", instead="")
    except MissingExtraError as e:
        print(e, file=sys.stderr)
        return 2
    from vizier_keras.server import process

    return process.main(args)


# ---------------------------------------------------------------------------- commands

def _source(options: argparse.Namespace) -> Any:
    from vizier_keras.results import open_source
    from vizier_keras.server.access import read_token_file

    token = options.token or None
    if options.token_file:
        token = read_token_file(options.token_file)
    return open_source(database=options.database, endpoint=options.endpoint, token=token,
                       project=options.project, region=options.region)


def _load(options: argparse.Namespace) -> Any:
    from vizier_keras.results import load_study

    return load_study(options.study, source=_source(options))


def _studies(options: argparse.Namespace) -> int:
    from vizier_keras.results import StudyResults

    rows = []
    with _source(options) as source:
        for study in source.list_studies():
            results = StudyResults(study, source=source).refresh()
            records = results.records()
            best = results.best_trials(1) if any(
                r["state"] in ("SUCCEEDED", "STOPPED_EARLY") for r in records) else []
            metric = results.metrics[0][0] if results.metrics else ""
            rows.append({
                "id": study["name"].rsplit("/", 1)[-1], "name": results.display_name,
                "state": study.get("state", ""), "trials": len(records),
                "finished": sum(r["state"] in ("SUCCEEDED", "STOPPED_EARLY") for r in records),
                "stopped early": sum(r["state"] == "STOPPED_EARLY" for r in records),
                "objective": metric, "best": best[0][metric] if best else None,
                "best trial": best[0]["trial"] if best else None})
    if not rows:
        print(f"no studies in {source.describe()}")
        return 0
    print(_table(rows))
    return 0


def _trials(options: argparse.Namespace) -> int:
    results = _load(options)
    rows = results.records()
    if options.format == "json":
        print(json.dumps([_jsonable(r) for r in rows], indent=1))
    elif options.format == "csv":
        sys.stdout.write(_csv(rows))
    else:
        shown = [{k: v for k, v in r.items() if k not in ("start", "end", "stop_reason")}
                 for r in rows]
        print(_table(shown) if shown else f"study {results.display_name} has no trials")
    return 0


def _best(options: argparse.Namespace) -> int:
    if options.n < 1:
        raise ValueError(f"-n must be at least 1, not {options.n}")
    results = _load(options)
    rows = results.best_trials(options.n)
    if not rows:
        print(f"study {results.display_name} has no finished trial yet", file=sys.stderr)
        return 1
    if options.format == "json":
        print(json.dumps([_jsonable(r) for r in rows], indent=1))
        return 0
    metrics = [m for m, _ in results.metrics]
    keep = ["trial", "state", *metrics, *(["front"] if len(metrics) > 1 else []),
            *[k for k in rows[0] if k.startswith("params.")], "steps"]
    print(_table([{k: r[k] for k in keep} for r in rows]))
    return 0


def _export(options: argparse.Namespace) -> int:
    results = _load(options)
    rows = results.measurement_records() if options.measurements else results.records()
    suffix = os.path.splitext(options.output)[1].lower()
    if suffix == ".csv":
        text = _csv(rows)
    elif suffix == ".json":
        text = json.dumps([_jsonable(r) for r in rows], indent=1) + "\n"
    else:
        raise ValueError(f"output {options.output!r} must end in .csv or .json")
    with open(options.output, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    what = "measurements" if options.measurements else "trials"
    print(f"wrote {len(rows)} {what} of {results.display_name} to {options.output}")
    return 0


def _delete(options: argparse.Namespace) -> int:
    with _source(options) as source:
        study = source.find_study(options.study)
        label = f"{study.get('displayName')} ({study['name']})"
        if not options.yes:
            print(f"vizier-keras delete: this deletes study {label} and all its trials; "
                  "add --yes to do it", file=sys.stderr)
            return 2
        source.delete_study(study)
    print(f"deleted study {label}")
    return 0


def _plot(options: argparse.Namespace) -> int:
    from vizier_keras.results.plots import save_plot

    results = _load(options)
    print(f"wrote {save_plot(results, options.kind, options.output)}")
    return 0


def _dashboard(options: argparse.Namespace) -> int:
    from vizier_keras.results.dashboard import Dashboard, serve_dashboard

    source = _source(options)
    board = Dashboard(source, options.study, refresh=options.refresh)
    token = options.dashboard_token or None

    def ready(url: str) -> None:
        shown = f"{url}?token=..." if token else url
        print(f"vizier-keras dashboard: {len(board.mirrors)} studies of {source.describe()} "
              f"at {shown} (refresh every {options.refresh:g} s; Ctrl-C stops)", flush=True)
        if options.ready_file:
            with open(options.ready_file + ".tmp", "w", encoding="utf-8") as f:
                json.dump({"url": url}, f)
            os.replace(options.ready_file + ".tmp", options.ready_file)

    with source:
        serve_dashboard(board, host=options.host, port=options.port, token=token,
                        insecure=options.insecure, ready=ready)
    return 0


# ---------------------------------------------------------------------------- output

def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        out[key] = value
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in _jsonable(row).items()})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _table(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
