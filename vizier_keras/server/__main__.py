"""``python -m vizier_keras.server --database PATH``: serve a database (see ``process.main``)."""

import sys

from vizier_keras.server.process import main

sys.exit(main())
