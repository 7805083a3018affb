"""The bulk lane's same-host door over a real Unix socket (actors/backends/lane_ipc.py, client/lane.py): the same
bytes as the CURVE door; a ticket still needed, once, in time; a socket directory open to others closed or refused
at start; a requester that may not use the socket takes the CURVE door."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import zmq
from structlog.testing import capture_logs

from actors.backends.lane import BulkLane
from client.lane import doors
from protocol.errors import ErrorCode
from protocol.lane import IPC_SOCKET, RUN_DIR, redeem_frames
from protocol.modes import Mode
from tests.test_bulk_lane import CONTENT, SERVER, Served, connection, fetch, serving

pytestmark = pytest.mark.timeout(60)

ALICE = connection("alice")


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / RUN_DIR / IPC_SOCKET


@pytest.fixture
def local(socket_path: Path) -> Iterator[Served]:
    with serving(socket_path) as served:
        yield served


def test_the_same_host_door_delivers_the_same_bytes(local: Served, socket_path: Path) -> None:
    assert local.lane.ipc_endpoint == f"ipc://{socket_path}"
    assert local.lane.announcement() == {"bulk": local.lane.endpoint, "bulk_ipc": local.lane.ipc_endpoint}
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    ticket = local.ticket(ALICE.public_key)
    assert [d.name for d in doors(ticket)] == ["ipc", "tcp"]
    got: list[bytes] = []
    reply = fetch(local, ALICE, ticket, got)
    assert reply["success"] is True and b"".join(got) == CONTENT and reply["data"]["size"] == len(CONTENT)
    assert local.lane.redeemed == [0, 1] and not local.lane.streams  # the same-host door, and done


def test_on_the_same_host_door_a_forged_used_or_expired_ticket_gets_nothing(local: Served) -> None:
    ticket = local.ticket(ALICE.public_key)
    forged = local.ticket(ALICE.public_key, "req-2")
    forged.fields["token"] = "x" * 43
    got: list[bytes] = []
    assert fetch(local, ALICE, forged, got)["error_code"] == ErrorCode.FORBIDDEN.value
    assert fetch(local, ALICE, ticket)["success"] is True
    assert fetch(local, ALICE, ticket, got)["error_code"] == ErrorCode.FORBIDDEN.value  # used
    late = local.ticket(ALICE.public_key, "req-3")
    local.clock.now += 10.5
    assert fetch(local, ALICE, late, got)["error_code"] == ErrorCode.FORBIDDEN.value  # expired
    assert got == [] and local.lane.redeemed == [0, 1]


def test_a_requester_that_may_not_use_the_socket_takes_the_curve_door(local: Served, socket_path: Path) -> None:
    socket_path.chmod(0)  # os.access fails for anyone but root
    if os.geteuid() == 0:
        os.chown(socket_path, 65534, 65534)  # root may open anything: a socket not its own is still not trusted
    ticket = local.ticket(ALICE.public_key)
    assert [d.name for d in doors(ticket)] == ["tcp"]
    got: list[bytes] = []
    assert fetch(local, ALICE, ticket, got)["success"] is True and b"".join(got) == CONTENT
    assert local.lane.redeemed == [1, 0]


def test_a_socket_nobody_listens_on_costs_a_moment_then_the_curve_door_serves(local: Served, socket_path: Path) -> None:
    assert local.lane.local is not None
    local.lane.local.unbind(local.lane.ipc_endpoint)
    socket_path.unlink(missing_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # left behind by a process that died
    stale.bind(str(socket_path))
    stale.close()
    ticket = local.ticket(ALICE.public_key)
    assert [d.name for d in doors(ticket)] == ["ipc", "tcp"]
    got: list[bytes] = []
    assert fetch(local, ALICE, ticket, got)["success"] is True and b"".join(got) == CONTENT
    assert local.lane.redeemed == [1, 0]


def lane_at(path: Path) -> tuple[BulkLane, list[MutableMapping[str, Any]]]:
    ctx: zmq.Context[Any] = zmq.Context.instance()
    with capture_logs() as logs:
        lane = BulkLane(ctx, "tcp://127.0.0.1:0", SERVER, Mode.REAL, ipc_path=path)
    return lane, logs


def test_a_socket_directory_open_to_others_is_closed_at_start_and_said(socket_path: Path) -> None:
    socket_path.parent.mkdir(mode=0o777)
    socket_path.parent.chmod(0o777)
    lane, logs = lane_at(socket_path)
    try:
        assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700 and lane.ipc_endpoint
        (fixed,) = [e for e in logs if e["event"] == "lane.ipc_dir_fixed"]
        assert fixed["mode"] == "777" and fixed["log_level"] == "warning"
    finally:
        lane.close()


def test_a_socket_directory_that_is_a_link_or_too_long_a_path_is_refused_at_start(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / RUN_DIR).symlink_to(elsewhere)
    too_long = tmp_path / ("d" * 120) / IPC_SOCKET
    for path, why in ((tmp_path / RUN_DIR / IPC_SOCKET, "not a plain directory"), (too_long, "longer than")):
        lane, logs = lane_at(path)
        try:
            assert lane.ipc_endpoint == "" and lane.local is None and "bulk_ipc" not in lane.announcement()
            (refused,) = [e for e in logs if e["event"] == "lane.ipc_dir_refused"]
            assert why in refused["reason"] and refused["log_level"] == "error"
        finally:
            lane.close()
    assert not list(elsewhere.iterdir())


ANOTHER_USER = """
import sys, zmq
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(sys.argv[1])
sock.send_multipart([bytes.fromhex(sys.argv[2]), b""])
print("answered" if sock.poll(2000) else "silence", flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="another user's process needs root")
def test_another_user_that_reaches_the_socket_is_served_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="lane-"))  # pytest's own folders are closed to other users
    try:
        with serving(base / RUN_DIR / IPC_SOCKET) as local:
            # As if the permissions had been opened: the peer's user is still checked.
            for path, mode in ((base, 0o711), (base / RUN_DIR, 0o711), (base / RUN_DIR / IPC_SOCKET, 0o666)):
                path.chmod(mode)
            ticket = local.ticket(ALICE.public_key)
            redeem = redeem_frames(ticket.fields["token"])[0].hex()
            as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
            ran = subprocess.run(
                [*as_nobody, "-c", ANOTHER_USER, local.lane.ipc_endpoint, redeem],
                cwd="/",
                capture_output=True,
                timeout=30,
            )
            assert ran.stdout.decode().strip() == "silence", ran.stderr.decode()
            # The lane's logger was configured before this test: its lines are read where they went.
            refused = [line for line in capfd.readouterr().out.splitlines() if "lane.ipc_peer_refused" in line]
            assert len(refused) == 1 and "uid=65534" in refused[0]
            assert fetch(local, ALICE, ticket)["success"] is True and local.lane.redeemed == [0, 1]  # not used up
    finally:
        shutil.rmtree(base)
