"""``python -m actors.replay``."""

import sys

from actors.replay.shell import main

sys.exit(main())
