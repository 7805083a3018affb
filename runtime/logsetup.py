"""structlog configuration, done once per process."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict


def configure_logging(actor: str, *, json: bool = False, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """Console lines by default, JSON lines with ``json=True``; every line carries ``actor``."""
    structlog.contextvars.clear_contextvars()

    def add_actor(logger: object, method: str, event_dict: EventDict) -> EventDict:
        # A processor rather than a context variable, so lines from other threads carry it too.
        event_dict.setdefault("actor", actor)
        return event_dict

    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_actor,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger()
