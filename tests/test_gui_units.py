"""The GUI's trust pieces without a browser or a stack: role gates, sign-in outcomes, download links."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gui.auth import LoginRefused, SignedIn, gate, login_outcome
from gui.downloads import DownloadLinks, Requester, content_disposition, safe_filename
from gui.server import build_app
from protocol.catalogue import CATALOGUE
from protocol.errors import ErrorCode
from protocol.responses import Reply, as_reply
from protocol.roles import ORDER, Role, allows
from tests.conftest import run_async

BROWSER = Requester("127.0.0.1", "Mozilla/5.0 test")


def reply(success: bool, data: Any = None, code: ErrorCode | None = None, **details: Any) -> Reply:
    out: dict[str, Any] = {"success": success, "message": "m", "mode": "bridge", "timestamp": datetime.now(UTC)}
    out["data"] = data
    if code is not None:
        out["error_code"] = code.value
    if details:
        out["details"] = details
    return as_reply(out)


# ----------------------------------------------------------------------------- role gates


@pytest.mark.parametrize("role", [*ORDER, None])
def test_gate_follows_the_catalogue_for_every_operation(role: Role | None) -> None:
    for name, operation in CATALOGUE.items():
        g = gate(role, name, "Label")
        assert g.allowed is allows(role, operation.role), name
        if g.allowed:
            assert g.tooltip == "Label"
        else:
            assert g.tooltip == f"Label · Needs role {operation.role}"


def test_gate_names_the_role_needed() -> None:
    assert gate(Role.VIEWER, "delete_client", "Delete a").tooltip == "Delete a · Needs role admin"
    assert gate(Role.VIEWER, "stop_server").tooltip == "Needs role operator"
    assert gate(Role.OPERATOR, "stop_server").allowed
    assert not gate(Role.OPERATOR, "get_audit_log").allowed and gate(Role.ADMIN, "get_audit_log").allowed


# ----------------------------------------------------------------------------- sign-in outcomes


def test_login_outcomes() -> None:
    ok = login_outcome(reply(True, {"token": "t", "user": "ann", "role": "operator", "settings": {"theme": "dark"}}))
    assert ok == SignedIn("ann", Role.OPERATOR, "t", None, {"theme": "dark"}) and ok.label == "ann (operator)"
    wrong = login_outcome(reply(False, code=ErrorCode.UNAUTHENTICATED))
    assert isinstance(wrong, LoginRefused) and wrong.message.startswith("Sign-in refused") and wrong.wrong_credentials
    assert not wrong.needs_code
    code = login_outcome(reply(False, code=ErrorCode.UNAUTHENTICATED, totp=True))
    assert isinstance(code, LoginRefused) and code.needs_code
    slow = login_outcome(reply(False, code=ErrorCode.RATE_LIMITED, retry_after_s=8))
    assert isinstance(slow, LoginRefused) and slow.message == "Too many attempts: m" and not slow.wrong_credentials
    odd = login_outcome(reply(True, {"token": "t", "user": "ann", "role": "root"}))
    assert isinstance(odd, LoginRefused) and "unknown role" in odd.message


# ----------------------------------------------------------------------------- download links


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def staged(links: DownloadLinks, name: str, content: bytes) -> Path:
    path = links.staging_path(name)
    path.write_bytes(content)
    return path


def test_staging_is_private_and_names_carry_no_path(tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path / "area")
    path = links.staging_path("../../etc/passwd")
    assert path.name == "_.._etc_passwd" and path.parent.parent == links.root
    assert mode(tmp_path / "area") == mode(links.root) == mode(path.parent) == 0o700
    assert safe_filename('a\r\nb"c') == "a__b_c" and safe_filename("..") == "download"
    assert content_disposition("résumé 1.pdf") == (
        "attachment; filename=\"r_sum_ 1.pdf\"; filename*=utf-8''r%C3%A9sum%C3%A9%201.pdf"
    )


def test_a_link_serves_once_only_its_browser_and_cleans_up(tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path)
    served: list[str] = []

    async def body() -> None:
        path = staged(links, "a.bin", b"abc")
        url = links.publish(path, "a.bin", "tab-1", BROWSER, on_served=lambda: served.append("a"))
        token = url.rsplit("/", 1)[1]
        assert url.startswith("/download/") and len(token) >= 40
        assert links.take(token, Requester("10.0.0.9", BROWSER.user_agent)) is None  # another machine
        assert links.take(token, Requester(BROWSER.ip, "curl/8")) is None  # another program
        link = links.take(token, BROWSER)  # the right browser still can: a refusal did not burn it
        assert link is not None and link.path == path
        links.served(link)
        assert not path.parent.exists() and served == ["a"]
        assert links.take(token, BROWSER) is None  # once

    run_async(body)


def test_links_expire_and_end_with_their_tab(tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path, ttl_s=0.05)

    async def body() -> None:
        first = staged(links, "a", b"1")
        token = links.publish(first, "a", "tab-1", BROWSER).rsplit("/", 1)[1]
        second = staged(links, "b", b"2")
        links.publish(second, "b", "tab-2", BROWSER)
        third = staged(links, "c", b"3")
        links.publish(third, "c", "tab-2", BROWSER)
        assert links.revoke("tab-2") == 2 and not second.exists() and not third.exists()
        await asyncio.sleep(0.1)
        assert links.take(token, BROWSER) is None and not first.exists() and len(links) == 0

    run_async(body)


def test_a_new_gui_process_wipes_what_dead_ones_left(tmp_path: Path) -> None:
    dead = tmp_path / "gui-999999999"  # no such pid
    (dead / "dl-x").mkdir(parents=True)
    (dead / "dl-x" / "secret.bin").write_bytes(b"left behind")
    alive = tmp_path / f"gui-{os.getppid()}"
    alive.mkdir()
    links = DownloadLinks(tmp_path)
    assert not dead.exists() and alive.exists() and links.root == tmp_path / f"gui-{os.getpid()}"


# ----------------------------------------------------------------------------- the HTTP route


async def never_called(page: Any) -> None:
    raise AssertionError("no Flet session in these tests")


def test_the_route_streams_the_file_once_as_an_attachment(tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path)
    content = os.urandom(600_000)  # more than one chunk

    async def body() -> None:
        path = staged(links, "report.pdf", content)
        url = links.publish(path, "report.pdf", "tab-1", Requester("127.0.0.1", BROWSER.user_agent))
        transport = httpx.ASGITransport(app=build_app(never_called, links), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            other = await http.get(url, headers={"user-agent": "curl/8"})
            assert other.status_code == 410 and path.exists()
            got = await http.get(url, headers={"user-agent": BROWSER.user_agent})
            assert got.status_code == 200 and got.content == content
            assert (
                got.headers["content-disposition"] == "attachment; filename=\"report.pdf\"; filename*=utf-8''report.pdf"
            )
            assert got.headers["cache-control"] == "no-store"
            assert not path.exists() and not path.parent.exists()
            again = await http.get(url, headers={"user-agent": BROWSER.user_agent})
            assert again.status_code == 410 and "expired or was already used" in again.text
            assert (await http.get("/download/nope", headers={"user-agent": BROWSER.user_agent})).status_code == 410

    run_async(body)
