"""``python -m actors.mock``."""

import sys

from actors.mock.shell import main

sys.exit(main())
