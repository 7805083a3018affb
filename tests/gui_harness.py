"""Playwright helpers for the Flet GUI tests: a headless Chromium, a Flet web server, and locators.

Flet 1.0 draws on a canvas; the helpers work on Flutter's accessibility tree (the
``flt-semantics-host`` DOM), which ``new_page`` turns on. Rules checked with flet 1.0.5:

* Text controls become ``<span>`` text: ``wait_text(page, "Ready")``.
* ``ft.Button("Save")`` / ``ft.TextButton`` are role ``button`` named by their text: ``click_button``.
* A ``NavigationRail`` destination is a ``button`` named ``"Jobs\\nTab 1 of 5"``: ``click_nav``.
* An ``IconButton(tooltip=...)`` is an unnamed ``button`` under a node labelled with the tooltip
  (inside a DataTable cell only the *first* tooltip of the cell survives): ``click_icon_button``.
  For row actions prefer ``ft.Semantics(identifier="delete-<id>", content=ft.IconButton(...))`` and
  ``by_id(page, "delete-<id>").click()``.
* ``ft.Semantics(identifier="x", ...)`` is the ``flt-semantics-identifier="x"`` attribute: ``by_id``.
* The lists (gui/views/rowlist.py) keep a row's actions in its menu: the menu button is
  ``actions-client-bob``, its entries ``delete-client-bob`` (role ``menuitem``, ``aria-disabled``,
  a disabled one labelled with its tooltip first): ``row_action`` opens the menu and finds the entry.
  A control's ``key`` is NOT exposed in the DOM.
* ``TextField(label="Name")`` is role ``textbox`` named by its label: ``fill_textbox``.
* A non-editable ``Dropdown`` is an unnamed ``button`` unless wrapped in
  ``ft.Semantics(label=..., identifier=...)``; an ``editable=True`` one is a ``textbox`` named
  by its label. Its options are role ``button`` named by the option text: ``select_dropdown``.
* ``AlertDialog`` is role ``alertdialog``; a ``SnackBar``'s text is in the tree (and also in an
  ``aria-live`` announcement outside it, which these helpers ignore).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Typical first render is 2-4 s (more with several pages loading at once); be generous.
LOAD_TIMEOUT_MS = 30_000
DEFAULT_TIMEOUT_MS = 10_000
# Flutter needs a moment after a text field gains focus before it accepts input.
FOCUS_SETTLE_MS = 300

TextLike = str | re.Pattern[str]


# --------------------------------------------------------------------------- browser


def chromium_path() -> str | None:
    """The system Chromium (``/usr/bin/chromium``), or whatever ``chromium`` is on PATH, or None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    """Skip locally, fail in CI (env ``CI`` set): a CI machine must have the browser."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless system Chromium driven by Playwright's sync API, shared by the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    path = chromium_path()
    if path is None:
        _unavailable("Chromium not found (apt-get install -y chromium); never use `playwright install`")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


def _loopback_only(route: Any) -> None:
    if (urlsplit(route.request.url).hostname or "") in LOOPBACK_HOSTS:
        route.continue_()
    else:  # e.g. flet-web asks cdn.jsdelivr.net for rive_native.js even with no_cdn; harmless
        route.abort()


def enable_semantics(page: Any, timeout: float = LOAD_TIMEOUT_MS) -> None:
    """Wait for Flutter to start and turn on its accessibility tree (needed again after a reload).

    Clicks ``flt-semantics-placeholder`` with JavaScript until ``flt-semantics-host`` holds a node,
    so a click that lands before Flutter is listening is simply repeated.
    """
    page.wait_for_function(
        """() => {
            const host = document.querySelector('flt-semantics-host');
            if (host && host.querySelector('flt-semantics')) return true;
            const ph = document.querySelector('flt-semantics-placeholder');
            if (ph) ph.click();
            return false;
        }""",
        polling=250,
        timeout=timeout,
    )


def new_page(
    browser: Any,
    url: str,
    *,
    ready_text: TextLike | None = None,
    viewport: tuple[int, int] = (1280, 900),
    timeout: float = LOAD_TIMEOUT_MS,
    console: list[str] | None = None,
) -> Any:
    """A fresh browser context (= a fresh Flet session) on ``url`` with the semantics tree enabled.

    Non-loopback requests are aborted. ``ready_text``: also wait until this text is shown.
    ``console``: list that collects the page's console messages and uncaught errors.
    Close it with ``page.context.close()`` (fires the app's ``page.on_disconnect``).
    """
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route("**/*", _loopback_only)
    try:
        page = context.new_page()
        if console is not None:
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(url, wait_until="load", timeout=timeout)
        enable_semantics(page, timeout)
        if ready_text is not None:
            wait_text(page, ready_text, timeout)
    except BaseException:
        context.close()
        raise
    return page


def reload(page: Any, ready_text: TextLike | None = None, timeout: float = LOAD_TIMEOUT_MS) -> None:
    """Reload: the browser reconnects to the SAME Flet session (``main`` is not run again; the app
    gets ``on_disconnect`` then ``on_connect``); the semantics tree must be enabled again."""
    page.reload(wait_until="load", timeout=timeout)
    enable_semantics(page, timeout)
    if ready_text is not None:
        wait_text(page, ready_text, timeout)


# --------------------------------------------------------------------------- locators and actions


def expect(target: Any, *args: Any, **kwargs: Any) -> Any:
    """``playwright.sync_api.expect``, imported lazily so test modules import without Playwright."""
    from playwright.sync_api import expect as _expect

    return _expect(target, *args, **kwargs)


def semantics(page: Any) -> Any:
    """The accessibility tree root; scope text searches to it (a SnackBar's text is also announced
    in an ``aria-live`` element outside it)."""
    return page.locator("flt-semantics-host")


def by_id(page: Any, identifier: str) -> Any:
    """The node of ``ft.Semantics(identifier=identifier, ...)``."""
    return page.locator(f'[flt-semantics-identifier="{identifier}"]')


def text(page: Any, value: TextLike, exact: bool = True) -> Any:
    """Locator for shown text (a ``str`` matches the whole text when ``exact``, a regex searches)."""
    return semantics(page).get_by_text(value, exact=exact if isinstance(value, str) else None)


def wait_text(page: Any, value: TextLike, timeout: float = DEFAULT_TIMEOUT_MS, exact: bool = True) -> Any:
    """Wait until ``value`` is shown somewhere on the page; returns its (first) locator."""
    loc = text(page, value, exact).first
    expect(loc).to_be_visible(timeout=timeout)
    return loc


def wait_no_text(page: Any, value: TextLike, timeout: float = DEFAULT_TIMEOUT_MS, exact: bool = True) -> None:
    """Wait until ``value`` is no longer shown (a closed dialog, a SnackBar that timed out...)."""
    expect(text(page, value, exact)).to_have_count(0, timeout=timeout)


def button(page: Any, name: TextLike, exact: bool = True) -> Any:
    return page.get_by_role("button", name=name, exact=exact if isinstance(name, str) else None)


def click_button(page: Any, name: TextLike, exact: bool = True, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
    """Click a text button (``ft.Button``, ``ft.TextButton``, dialog actions...) by its text."""
    button(page, name, exact).click(timeout=timeout)


def click_nav(page: Any, label: str, timeout: float = LOAD_TIMEOUT_MS) -> None:
    """Click a ``NavigationRail`` / ``NavigationBar`` destination (named ``"<label>\\nTab i of n"``).

    The rail may take as long as the console's first render after a sign-in on a busy machine
    (seen past 10 s in full-suite runs), so this waits as long as a page load."""
    pattern = re.compile(rf"^{re.escape(label)}(\s+Tab \d+ of \d+)?$")
    page.get_by_role("button", name=pattern).click(timeout=timeout)


def click_nav_if_shown(page: Any, label: str, timeout: float = 5_000) -> bool:
    """Click a rail destination if the console still shows one (False when the tab left the console
    meanwhile, e.g. for its login page)."""
    from playwright.sync_api import Error

    try:
        click_nav(page, label, timeout)
    except Error:
        return False
    return True


def click_icon_button(page: Any, tooltip: str, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
    """Click an ``IconButton`` by its tooltip (the tooltip labels a node around the unnamed button)."""
    page.get_by_label(tooltip, exact=True).get_by_role("button").first.click(timeout=timeout)


def row_action(page: Any, identifier: str, timeout: float = DEFAULT_TIMEOUT_MS) -> Any:
    """The entry ``identifier`` (``delete-client-bob``) of a list row's menu, once its menu
    (``actions-client-bob``) is open; ``page.keyboard.press("Escape")`` closes it unused."""
    _, row = identifier.split("-", 1)
    by_id(page, f"actions-{row}").click(timeout=timeout)
    entry = by_id(page, identifier)
    expect(entry).to_be_visible(timeout=timeout)
    return entry


def textbox(page: Any, label: str, exact: bool = True) -> Any:
    return page.get_by_role("textbox", name=label, exact=exact)


def fill_textbox(page: Any, label: str, value: str, submit: bool = False, timeout: float = DEFAULT_TIMEOUT_MS) -> Any:
    """Replace the text of ``TextField(label=label)``; ``submit`` presses Enter (``on_submit``).

    Focus first: ``fill`` on an unfocused Flutter field is often not seen by the app (4/8 in a
    test) while click, settle, fill was 8/8.
    """
    box = textbox(page, label)
    box.click(timeout=timeout)
    page.wait_for_timeout(FOCUS_SETTLE_MS)
    box.fill(value, timeout=timeout)
    expect(box).to_have_value(value, timeout=timeout)
    if submit:
        box.press("Enter")
    return box


def select_dropdown(page: Any, dropdown: str | Any, option: str, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
    """Open a ``Dropdown`` and pick ``option`` (the option's text).

    ``dropdown``: a Locator, or a string matched as (1) a ``Semantics`` identifier, (2) a button
    named so (``ft.Semantics(label=...)`` around a non-editable Dropdown), (3) a textbox labelled
    so (``Dropdown(editable=True, label=...)``).
    """
    if isinstance(dropdown, str):
        target = by_id(page, dropdown).or_(button(page, dropdown)).or_(textbox(page, dropdown)).first
    else:
        target = dropdown
    already = button(page, option).count()  # same-named buttons outside the menu
    target.click(timeout=timeout)
    entries = button(page, option)
    expect(entries).to_have_count(already + 1, timeout=timeout)
    # The menu is an overlay appended after the page content, so its entry is the last match.
    entries.last.click(timeout=timeout)
    expect(entries).to_have_count(already, timeout=timeout)  # menu closed


def screenshot(page: Any, path: str | Path, full_page: bool = False) -> Path:
    """Save a PNG of what Flutter drew (``chromium --screenshot`` only catches the loading screen).

    Flutter paints the frame after the semantics tree the tests wait on has changed, and nothing in
    the DOM says when it did: two animation frames later it has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --------------------------------------------------------------------------- the console's sign-in


def admin_password(data_dir: Path) -> str:
    """The first admin's password, which the stack's bootstrap wrote under its data dir."""
    return (data_dir / "credentials" / "admin-password").read_text().strip()


def gui_args(data_dir: Path, endpoint: str | None = None) -> list[str]:
    """``python -m gui`` arguments for the stack in ``data_dir``: its GUI key, its exports and downloads."""
    args = ["--connection", str(data_dir / "credentials" / "gui.json")]
    args += ["--export-dir", str(data_dir / "exports"), "--download-dir", str(data_dir / "gui-downloads")]
    return args + (["--endpoint", endpoint] if endpoint else [])


def sign_in(page: Any, user: str, password: str, role: str | None = None, code: str | None = None) -> None:
    """Sign in on the login page; with ``role``, wait until the top bar shows ``user (role)``."""
    expect(textbox(page, "Username")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    fill_textbox(page, "Username", user)
    fill_textbox(page, "Password", password)
    if code is not None:
        fill_textbox(page, "Code", code)
    click_button(page, "Sign in")
    if role is not None:
        expect(by_id(page, "signed-in-user")).to_have_text(f"{user} ({role})", timeout=LOAD_TIMEOUT_MS)


def open_login(browser: Any, url: str, **kw: Any) -> Any:
    """A fresh tab on the console's login page (its texts sit in one labelled group: wait for a field)."""
    page = new_page(browser, url, **kw)
    try:
        expect(textbox(page, "Username")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    except BaseException:
        page.context.close()
        raise
    return page


def open_signed_in(browser: Any, url: str, user: str, password: str, role: str, **kw: Any) -> Any:
    """A fresh tab on the console, signed in as ``user``."""
    page = open_login(browser, url, **kw)
    try:
        sign_in(page, user, password, role)
    except BaseException:
        page.context.close()
        raise
    return page


# --------------------------------------------------------------------------- Flet server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FletServer:
    """A Flet web app in a subprocess (own process group) on a free loopback port.

    ``FletServer(module="gui", args=["--endpoint", ep])`` runs ``python -m gui --endpoint EP --port P``;
    ``FletServer(script=path)`` runs ``python path --port P``. ``port_flag=None`` passes no flag;
    the port still applies because ``FLET_SERVER_PORT`` / ``FLET_SERVER_IP`` (which ``ft.run``
    prefers over its arguments) are set too, with ``FLET_FORCE_WEB_SERVER`` and ``FLET_WEB_NO_CDN``.
    """

    def __init__(
        self,
        *,
        module: str | None = None,
        script: str | Path | None = None,
        args: Sequence[str] = (),
        port: int | None = None,
        port_flag: str | None = "--port",
        env: dict[str, str] | None = None,
        cwd: str | Path = ROOT,
        log_path: str | Path | None = None,
        python: str = sys.executable,
    ) -> None:
        if (module is None) == (script is None):
            raise ValueError("give exactly one of module= or script=")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        target = ["-m", module] if module else [str(script)]
        self.argv = [python, *target, *args, *([port_flag, str(self.port)] if port_flag else [])]
        self.env = {
            **os.environ,
            "FLET_FORCE_WEB_SERVER": "true",
            "FLET_WEB_NO_CDN": "true",
            "FLET_SERVER_IP": "127.0.0.1",
            "FLET_SERVER_PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.cwd = str(cwd)
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="fletserver-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._log_file: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> FletServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"{self.argv} exited with {code} before serving:\n{self.log()}")
            if self._answers():
                self.startup_seconds = time.monotonic() - t0
                return self
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"{self.url} gave no HTTP 200 within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def log(self, tail: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
            with contextlib.suppress(ProcessLookupError):  # leftovers in the group, if any
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def __enter__(self) -> FletServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
