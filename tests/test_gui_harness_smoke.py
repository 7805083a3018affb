"""Smoke test of tests/gui_harness.py: a tiny Flet app served by FletServer, driven in headless Chromium."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gui_harness import (
    FletServer,
    by_id,
    click_button,
    expect,
    fill_textbox,
    new_page,
    reload,
    screenshot,
    select_dropdown,
    wait_text,
)

pytestmark = pytest.mark.timeout(120)

APP = textwrap.dedent("""
    import argparse
    import asyncio

    import flet as ft


    async def main(page: ft.Page):
        count = ft.Text("count 0")
        echo = ft.Text("echo: ")
        submitted = ft.Text("submitted: ")
        choice = ft.Text("choice: none")
        ticker = ft.Text("tick 0")

        async def increment(e):
            count.value = f"count {int(count.value.split()[1]) + 1}"
            count.update()

        async def changed(e):
            echo.value = f"echo: {e.control.value}"
            echo.update()

        async def submit(e):
            submitted.value = f"submitted: {e.control.value}"
            submitted.update()

        async def selected(e):
            choice.value = f"choice: {e.control.value}"
            choice.update()

        page.add(
            ft.Semantics(identifier="ticker", content=ticker),
            count,
            ft.Button("Increment", on_click=increment),
            ft.TextField(label="Message", on_change=changed, on_submit=submit),
            echo,
            submitted,
            ft.Semantics(identifier="level", label="Level", content=ft.Dropdown(
                label="Level", on_select=selected,
                options=[ft.DropdownOption(key="info", text="Info"), ft.DropdownOption(key="debug", text="Debug")])),
            choice,
        )

        async def tick():
            n = 0
            while True:
                await asyncio.sleep(0.2)
                n += 1
                ticker.value = f"tick {n}"
                ticker.update()

        task = page.run_task(tick)
        page.on_close = lambda e: task.cancel()  # not on_disconnect: a reload keeps the session


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        port = parser.parse_args().port
        ft.run(main, view=ft.AppView.WEB_BROWSER, host="127.0.0.1", port=port, no_cdn=True)
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FletServer]:
    tmp = tmp_path_factory.mktemp("gui_smoke")
    script = tmp / "smoke_app.py"
    script.write_text(APP)
    with FletServer(script=script, log_path=tmp / "server.log") as srv:
        yield srv


def test_click_type_and_background_update(browser, server: FletServer, tmp_path: Path) -> None:
    console: list[str] = []
    page = new_page(browser, server.url, ready_text="count 0", console=console)
    try:
        click_button(page, "Increment")
        wait_text(page, "count 1")
        click_button(page, "Increment")
        wait_text(page, "count 2")

        fill_textbox(page, "Message", "hello flet", submit=True)
        wait_text(page, "echo: hello flet")
        wait_text(page, "submitted: hello flet")

        select_dropdown(page, "level", "Debug")
        wait_text(page, "choice: debug")

        # The ticker advances with no interaction at all.
        ticker = by_id(page, "ticker")
        seen = {ticker.inner_text()}
        for _ in range(2):
            expect(ticker).not_to_have_text(re.compile("^(" + "|".join(map(re.escape, seen)) + ")$"))
            seen.add(ticker.inner_text())
        assert all(re.fullmatch(r"tick \d+", t) for t in seen), seen
        assert screenshot(page, tmp_path / "smoke.png").stat().st_size > 0
    finally:
        page.context.close()
    assert not [m for m in console if m.startswith("pageerror")], console


def test_sessions_are_separate(browser, server: FletServer) -> None:
    one = new_page(browser, server.url, ready_text="count 0")
    two = new_page(browser, server.url, ready_text="count 0")
    try:
        click_button(one, "Increment")
        wait_text(one, "count 1")
        wait_text(two, "count 0")  # the other session's main(page) has its own state
        reload(one, ready_text="count 1")  # a reload reconnects to the same session
    finally:
        one.context.close()
        two.context.close()
