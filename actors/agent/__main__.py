"""``python -m actors.agent``."""

import sys

from actors.agent.cli import main

sys.exit(main())
