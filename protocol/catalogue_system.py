"""The catalogue's operations about the running system: server logs, a backend round trip, the
agents' enrollment token (the real server only) and the bridge's own (events, status)."""

from __future__ import annotations

from protocol.operation import PAGE, Access, Arg, ArgType, HandledBy, Operation, limit_arg, offset_arg
from protocol.roles import Role
from protocol.views import ViewKey as K

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

SYSTEM_OPERATIONS: tuple[Operation, ...] = (
    # -- logs --
    Operation(
        "get_logs",
        "logs",
        "Server log entries, newest first, filtered and paged.",
        Access.READ,
        5.0,
        f"{PAGE} of LogEntry",
        (
            Arg("level", ArgType.STRING, "Minimum level.", required=False, nullable=True, choices=LOG_LEVELS),
            Arg(
                "text",
                ArgType.STRING,
                "Case-insensitive substring of the event or message.",
                required=False,
                nullable=True,
            ),
            offset_arg(),
            limit_arg(100, 1000),
        ),
        role=Role.VIEWER,
    ),
    Operation(
        "test_connection",
        "logs",
        "Round trip to a backend.",
        Access.READ,
        5.0,
        "`{pong: true, backend, server_time}`",
        role=Role.VIEWER,
    ),
    # -- agents' enrollment (the real server only) --
    Operation(
        "get_enrollment_token",
        "enrollment",
        "The token backup agents enroll with, where they connect and the server's public key.",
        Access.READ,
        5.0,
        "`{token, agents_endpoint, server_public_key}`",
        secret_results=("token",),
    ),
    Operation(
        "rotate_enrollment_token",
        "enrollment",
        "Replace the enrollment token: the old one enrolls nobody from now on; enrolled agents keep working.",
        Access.WRITE,
        10.0,
        "`{token, agents_endpoint, server_public_key}` with the new token",
        refreshes=(K.ACTIVITY, K.AUDIT),
        secret_results=("token",),
    ),
    # -- the bridge's own --
    Operation(
        "events_since",
        "bridge",
        "Events with a sequence number greater than `seq` (at most 1000 per call).",
        Access.READ,
        5.0,
        "`{events: [Event], latest_seq, oldest_seq, gap_too_old, more, epoch}` "
        "(epoch: this bridge run; a new one means the bridge restarted and its seq restarted)",
        (Arg("seq", ArgType.INTEGER, "Last sequence number the caller has seen (0 for none).", minimum=0),),
        handled_by=HandledBy.BRIDGE,
        role=Role.VIEWER,
    ),
    Operation(
        "bridge_status",
        "bridge",
        "Backends, their liveness and operations, current mode and fallback policy.",
        Access.READ,
        5.0,
        "`BridgeStatus`",
        handled_by=HandledBy.BRIDGE,
        role=Role.VIEWER,
    ),
)
