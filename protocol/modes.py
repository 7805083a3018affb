"""Who answers (a reply's and an event's ``mode``) and when the bridge may fall back."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """``REAL``/``MOCK``: the backend that answered or published. ``BRIDGE``: the bridge itself.
    ``LOCAL``: the client library, for a request it could not deliver or a reply it could not
    handle. ``NONE``: the bridge's serving mode while no backend is alive."""

    REAL = "real"
    MOCK = "mock"
    BRIDGE = "bridge"
    LOCAL = "local"
    NONE = "none"


BACKEND_MODES: frozenset[Mode] = frozenset({Mode.REAL, Mode.MOCK})


class Policy(StrEnum):
    """Which requests the bridge sends to the mock when the real backend fails or is down."""

    READS = "reads"
    ALL = "all"
    NONE = "none"
