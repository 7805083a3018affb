"""bridgectl, the command line of the bridge (see client/bridgectl/cli.py for its commands)."""

from client.bridgectl.cli import main

__all__ = ["main"]
