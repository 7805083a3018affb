"""The same-host door of the bulk lane: a Unix socket in a 0700 directory of the backend's data dir.

No CURVE there (docs/architecture.md, "The same-host lane is not encrypted"): the file system
decides who may connect, so the directory must be the backend's own and closed to everyone
else before the socket is bound in it. A directory of ours that is open to others is closed
(``lane.ipc_dir_fixed``); one that is not ours, not a directory, or a path too long for a Unix
socket is refused (``lane.ipc_dir_refused``): the backend then serves the CURVE lane only.
Each peer's user comes from the kernel (SO_PEERCRED, which libzmq reports in a message's
Peer-Address as ``host:uid:gid:pid``): only our own user or root is served.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog
import zmq

from protocol.lane import MAX_IPC_PATH

log = structlog.get_logger()

DIR_MODE = 0o700
SOCKET_MODE = 0o600


def prepare_socket_dir(path: Path) -> bool:
    """Make ``path``'s directory fit to hold the lane's socket: True when it is (created or fixed)."""
    directory = path.parent
    if len(os.fsencode(path)) > MAX_IPC_PATH:
        return _refused(path, f"the path is longer than a Unix socket's {MAX_IPC_PATH} bytes")
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        return _refused(path, f"cannot create its directory: {exc}")
    if not stat.S_ISDIR(info.st_mode):  # a symlink too: it could lead anywhere later
        return _refused(path, "its directory is not a plain directory (a symlink or a file)")
    if info.st_uid != os.geteuid():
        return _refused(path, f"its directory belongs to uid {info.st_uid}, not to this process's {os.geteuid()}")
    mode = stat.S_IMODE(info.st_mode)
    if mode != DIR_MODE:
        try:
            directory.chmod(DIR_MODE)
        except OSError as exc:
            return _refused(path, f"its directory has mode {mode:o} and cannot be closed: {exc}")
        log.warning("lane.ipc_dir_fixed", directory=str(directory), mode=f"{mode:o}", now=f"{DIR_MODE:o}")
    return True


def _refused(path: Path, reason: str) -> bool:
    log.error("lane.ipc_dir_refused", socket=str(path), reason=reason, consequence="the CURVE lane only")
    return False


def bind_socket(sock: zmq.Socket[bytes], path: Path) -> str:
    """Bind ``sock`` at ``path`` (its directory prepared), close the socket file to others; the endpoint."""
    endpoint = f"ipc://{path}"
    sock.bind(endpoint)  # libzmq replaces a socket file a previous run left behind
    # Where the OS honours a socket's mode (Linux does), a 0700 directory is not the only guard.
    path.chmod(SOCKET_MODE)
    return endpoint


def peer_uid(frame: zmq.Frame) -> int | None:
    """The user of the process at the other end of a Unix socket, as the kernel told libzmq."""
    try:
        address = frame.get("Peer-Address")
    except zmq.ZMQError:
        return None
    parts = address.rsplit(":", 3) if isinstance(address, str) else []
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None


def may_connect(uid: int | None) -> bool:
    """Our own user, or root: the users that can read the data dir already."""
    return uid is not None and uid in (os.geteuid(), 0)
