"""``python -m vizier_keras.server --database PATH``: serve a database (see ``app.main``)."""

import sys

from vizier_keras.server.app import main

sys.exit(main())
