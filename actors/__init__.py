"""The actors, one subpackage each: bridge, the two backends (mock and real server) and what they share, agent, replay.

Each is a thin socket shell around a core that can be tested without sockets, and runs
alone with ``python -m actors.<name>``.
"""
