"""The bridge's ``bridge_status``: its mode, its event ring, its endpoints and its backends, as of ``now``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.bridge.core import BridgeCore


def bridge_status(core: BridgeCore, now: float) -> dict[str, Any]:
    return {
        **core.outage.status(),
        "epoch": core.events.epoch,
        "latest_seq": core.events.seq,
        "oldest_seq": core.events.oldest_seq,
        "events_endpoint": core.config.events_endpoint,
        "frontend_endpoint": core.config.frontend_endpoint,
        "tap_endpoint": core.config.tap_endpoint,
        "uptime_s": round(now - core.started, 3),
        "inflight": len(core.pending),
        "heartbeat_interval_s": core.config.heartbeat_interval,
        "backends": core.registry.describe(now),
    }
