"""A real stack with its web GUI for the browser tests, and the calls they make beside the browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import Stack
from tests.gui_harness import FletServer, admin_password, gui_args, open_signed_in, wait_text

SCREENSHOTS = Path(os.environ.get("GUI_SCREENSHOTS", "/tmp/gui-e2e"))


@contextmanager
def stack_with_gui(root: Path, *stack_args: str, real: bool = False) -> Iterator[tuple[Stack, FletServer]]:
    """A stack under ``root`` (``stack_args`` for run_all; mock-only unless ``real``: then also the real
    server, started once it has registered) and a GUI attached to it with its own key."""
    stack = Stack(root / "stack", *stack_args, real=real).start(backend="server" if real else None)
    server = FletServer(module="gui", args=gui_args(stack.data_dir, stack.endpoint), log_path=root / "gui.log")
    try:
        yield stack, server.start()
    finally:
        server.stop()
        stack.stop()


def data(stack: Stack, op: str, **args: Any) -> Any:
    """The data of a successful call made with the stack's admin key (a failed one fails the test)."""
    with stack.client() as c:
        reply = c.call(op, args)
    assert reply["success"], reply
    return reply["data"]


def admin_console(browser: Any, stack: Stack, server: FletServer, viewport: tuple[int, int] = (1280, 900)) -> Any:
    """A new tab signed in as the stack's admin, on the dashboard."""
    page = open_signed_in(browser, server.url, "admin", admin_password(stack.data_dir), "admin", viewport=viewport)
    wait_text(page, "Dashboard")
    return page
