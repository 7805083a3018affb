"""``python -m actors.server``."""

import sys

from actors.server.shell import main

sys.exit(main())
