"""Sign in many times under CPU load and look at the console's top bar each time. Prints JSON.

    python bench/bench_banner.py [--signins 40] [--load 3] [--width 1280] [--renderer served]

Written for the top-bar defect of 2026-12-01: right after a sign-in the bar was once drawn with its
data-source pill as wide as the window ("DE", glyphs missing in the title), pushing the user label
and Sign out out of it, and it stayed so (a layout, not a frame: the user label had left the
accessibility tree for 30 s in the one reproduction here, 1 sign-in in 9 under load). Each sign-in
is a fresh browser context; right after it and 1.5 s later the bounding boxes of the data-source
pill, the user label and Sign out are read, and a bar where the pill is wider than its text can be,
or the others are not inside the window, is kept as a screenshot under --out.

``--renderer``: ``served`` is the page as the GUI serves it (since gui/renderer.py: not cross-origin
isolated, so skwasm draws on one thread); ``multi-threaded`` adds the COOP/COEP headers Flet sends
by itself, which make skwasm (flet-web 1.0.5 = Flutter 3.44.8) lay text out on the page's thread and
rasterize on a worker, the two sharing Skia's glyph cache without working locks in that build
(flutter/flutter#190039, fixed by #190048 in 3.47): the defect's conditions; ``canvaskit`` asks for
CanvasKit. A rewritten page is one Chromium treats as non-local, hence the extra browser flag.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from tests.gui_harness import (
    CHROMIUM_FLAGS,
    LOAD_TIMEOUT_MS,
    admin_password,
    button,
    by_id,
    chromium_path,
    enable_semantics,
    expect,
    sign_in,
    textbox,
)
from tests.gui_stack import stack_with_gui

WIDEST_PILL_PX = 300  # "MOCK DATA · real server down" is about 220 px wide
SETTLE_MS = 1500
BUSY_LOOP = "while True: pass"


def renderer_route(renderer: str) -> Any:
    """A route handler: loopback only, and the page itself changed for ``renderer``."""

    def handle(route: Any) -> None:
        url = route.request.url
        if "://127.0.0.1" not in url:
            route.abort()
            return
        if renderer == "served" or route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch()
        dropped = {"content-length", "content-encoding"}
        headers = {k: v for k, v in response.headers.items() if k.lower() not in dropped}
        if renderer == "multi-threaded":
            headers |= {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
        body = response.body()
        if renderer == "canvaskit":
            body = body.replace(b'flet.webRenderer="auto"', b'flet.webRenderer="canvaskit"')
        route.fulfill(status=response.status, headers=headers, body=body)

    return handle


def bar(page: Any) -> dict[str, Any]:
    boxes: dict[str, Any] = {}
    for name, locator in (
        ("pill", by_id(page, "data-source")),
        ("user", by_id(page, "signed-in-user")),
        ("sign_out", button(page, "Sign out")),
    ):
        try:
            boxes[name] = locator.bounding_box(timeout=2_000)
        except Exception:  # Playwright's timeout: the node is not in the accessibility tree
            boxes[name] = None
    return boxes


def broken(boxes: dict[str, Any], width: int) -> str:
    pill, user, sign_out = boxes["pill"], boxes["user"], boxes["sign_out"]
    if pill is not None and pill["width"] > WIDEST_PILL_PX:
        return "wide pill"
    for name, box in (("user", user), ("sign out", sign_out)):
        if box is None or box["x"] + box["width"] > width:
            return f"{name} not in the window"
    return ""


def one_signin(browser: Any, url: str, password: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": args.width, "height": 900})
    context.route("**/*", renderer_route(args.renderer))
    try:
        page = context.new_page()
        page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
        enable_semantics(page)
        expect(textbox(page, "Username")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
        started = time.monotonic()
        with contextlib.suppress(AssertionError):  # the user label never showed: what bar() finds says why
            sign_in(page, "admin", password, "admin")
        found: dict[str, Any] = {"signin_s": round(time.monotonic() - started, 1), "right_after": bar(page)}
        found["isolated"] = page.evaluate("() => window.crossOriginIsolated")  # multi-threaded skwasm
        page.wait_for_timeout(SETTLE_MS)
        found["settled"] = bar(page)
        found["broken"] = [broken(found[k], args.width) for k in ("right_after", "settled")]
        if any(found["broken"]):
            found["screenshot"] = str(args.out / f"signin-{n:03d}.png")
            page.screenshot(path=found["screenshot"])
        return found
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signins", type=int, default=40)
    parser.add_argument("--load", type=int, default=3, help="busy-loop processes beside the stack (nice 0)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--renderer", choices=["served", "multi-threaded", "canvaskit"], default="served")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench-banner-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.load)]
    results: list[dict[str, Any]] = []
    try:
        with stack_with_gui(args.out, "--tick", "3600") as (stack, server), sync_playwright() as pw:
            flags = CHROMIUM_FLAGS + (
                ["--disable-features=LocalNetworkAccessChecks"] if args.renderer != "served" else []
            )
            browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=flags)
            password = admin_password(stack.data_dir)
            results = [one_signin(browser, server.url, password, args, n) for n in range(args.signins)]
            browser.close()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    emit(
        {
            "renderer": args.renderer,
            "width": args.width,
            "load": args.load,
            "signins": len(results),
            "multi_threaded": sorted({r["isolated"] for r in results}),
            "broken_right_after": sum(bool(r["broken"][0]) for r in results),
            "broken_settled": sum(bool(r["broken"][1]) for r in results),
            "broken": [r for r in results if any(r["broken"])],
            "out": str(args.out),
        }
    )


if __name__ == "__main__":
    main()
