"""Regenerates every benchmark result and plot.

Run:  python benchmarks/run_all.py           (the full set: a few hours on 2 cores)
      python benchmarks/run_all.py --quick   (each script in its quick mode, server_speed.py
                                              left out: under 10 minutes; results go to
                                              benchmarks/results/quick/)

The learning-curve table that early_stopping.py replays is committed
(benchmarks/data/curves.json); ``--record-curves`` records it again first (~15 minutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ("overhead", "scaling", "early_stopping", "quality", "callback_overhead",
           "studies/keras_objective", "server_speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--record-curves", action="store_true")
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    if args.only is None:
        # server_speed.py (issue 3's GP latency against plain OSS Vizier) needs ~10 minutes
        # even in its quick mode; it runs in the full set only.
        args.only = ",".join(s for s in SCRIPTS if not (args.quick and s == "server_speed"))
    results = os.path.join(HERE, "results", "quick" if args.quick else "")
    os.makedirs(results, exist_ok=True)
    timings = []
    if args.record_curves:
        subprocess.run([sys.executable, os.path.join(HERE, "studies", "record_curves.py")],
                       check=True)
    for script in args.only.split(","):
        command = [sys.executable, os.path.join(HERE, f"{script}.py"),
                   "--out", os.path.join(results, f"{os.path.basename(script)}.json")]
        if args.quick:
            command.append("--quick")
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        start = time.time()
        subprocess.run(command, check=True)
        timings.append((script, time.time() - start))
    if not args.quick:
        subprocess.run([sys.executable, os.path.join(HERE, "plots.py")], check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "report.py")], check=True)
    print("\n" + "\n".join(f"{s}: {t:.0f} s" for s, t in timings))


if __name__ == "__main__":
    main()
