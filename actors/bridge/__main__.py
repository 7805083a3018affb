"""``python -m actors.bridge``."""

import sys

from actors.bridge.shell import main

sys.exit(main())
