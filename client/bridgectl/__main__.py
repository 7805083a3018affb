"""``python -m client.bridgectl``."""

from client.bridgectl.cli import main

raise SystemExit(main())
