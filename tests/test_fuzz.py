"""Property tests: arbitrary bytes and envelopes give only clean errors, never another exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.bridge.auth.authority import Authority
from protocol import PROTOCOL_VERSION
from protocol.codec import decode, encode
from protocol.envelope import KINDS, READY, decode_header, encode_header
from protocol.errors import ProtocolError
from tests.test_bridge_core import api_key, backend_key, make_core, trust

__all__ = ["trust"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.timeout(120)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
header_maps = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(PROTOCOL_VERSION), scalars),
        "kind": st.one_of(st.sampled_from(sorted(KINDS)), scalars),
        "id": st.one_of(st.text(min_size=1, max_size=10), scalars),
        "op": st.one_of(
            st.sampled_from(
                ["get_clients", "events_since", "bridge_status", "delete_client", "whoami", "user_add", "get_audit_log"]
            ),
            scalars,
        ),
        "auth": scalars,
        "reply_to": st.one_of(st.text(max_size=10), scalars),
        "timeout_ms": st.one_of(st.integers(-5, 10_000), scalars),
        "session": scalars,
        "seq": scalars,
        "index": scalars,
        "offset": scalars,
        "ok": scalars,
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_decoder_raises_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_header(data)
    with contextlib.suppress(ProtocolError):
        decode(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(header_maps, values)
def test_arbitrary_envelopes_never_crash_the_bridge(trust: Authority, header: dict, body: object) -> None:
    core, out, _ = make_core(trust)
    mock = backend_key(core, "mock")
    ready = encode_header(READY, name="mock", mode="mock", ops=["get_clients", "delete_client"])
    core.on_backend([b"mock", b"", ready, b""], mock)
    try:
        header_frame = encode(header)
        body_frame = encode(body)
    except ProtocolError:
        return  # not representable in msgpack (e.g. integers beyond 64 bits)
    core.on_frontend([b"c", header_frame, body_frame], api_key(core), "127.0.0.1")
    core.on_backend([b"mock", b"c", header_frame, body_frame], mock)
    core.on_timer()
    for _, frames in out.clients:  # every reply the client gets is a well-formed standard reply
        reply = decode(frames[1])
        assert isinstance(reply["success"], bool) and isinstance(reply["message"], str)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=50), min_size=0, max_size=5))
def test_arbitrary_frames_never_crash_the_bridge(trust: Authority, frames: list[bytes]) -> None:
    core, _, _ = make_core(trust)
    core.on_frontend([b"c", *frames], api_key(core))
    core.on_backend([b"b", *frames], backend_key(core, "mock"))
    core.on_frontend([b"c", *frames], None)  # no key at all: refused, never a crash
    core.on_timer()
