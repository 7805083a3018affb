"""The agents' enrollment token: the real server shows and rotates it; the mock, which has no agents, has neither."""

from __future__ import annotations

import pytest

from actors.server.core import BackupServer
from protocol.catalogue import REAL_ONLY_OPERATIONS
from tests.contract.harness import Backend, covers

pytestmark = pytest.mark.timeout(30)


@covers("get_enrollment_token", "rotate_enrollment_token")
def test_the_real_server_shows_and_rotates_its_token_the_mock_has_none(backend: Backend) -> None:
    if backend.mode == "mock":
        for op in sorted(REAL_ONLY_OPERATIONS):
            assert op not in backend.core.operations()
            assert backend.error(op) == "UNKNOWN_OPERATION"
        return
    assert isinstance(backend.core, BackupServer)
    shown = backend.call("get_enrollment_token")
    assert shown["token"] == backend.core.token and shown["server_public_key"] == backend.core.keys.public.decode()
    assert shown["agents_endpoint"] == backend.core.config.agents_endpoint
    rotated = backend.call("rotate_enrollment_token")
    assert rotated["token"] != shown["token"] and backend.call("get_enrollment_token") == rotated
    assert "enrollment_token_rotated" in backend.activity_types()
