"""The ``vizier-keras`` command.

``vizier-keras serve --database PATH [--host 127.0.0.1] [--port 8080] [--token TOKEN]`` serves
the Vertex AI Vizier v1 REST API from a SQLite file (needs the ``[local]`` extra).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vizier_keras import __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="vizier-keras",
                                     description="Hyperparameter tuning for Keras on Vizier.")
    parser.add_argument("--version", action="version", version=f"vizier-keras {__version__}")
    parser.add_argument("command", choices=["serve"], help="serve: run a Vizier server")
    known, rest = parser.parse_known_args(args[:1])
    if known.command == "serve":
        from vizier_keras.errors import MissingExtraError
        from vizier_keras.server.embedded import require_local_extra

        try:
            require_local_extra("vizier-keras serve", instead="")
        except MissingExtraError as e:
            print(e, file=sys.stderr)
            return 2
        from vizier_keras.server import app

        return app.main(args[1:] + rest)
    return 2  # unreachable: argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
