"""Property tests: arbitrary bytes and envelopes give only clean errors, never another exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from protocol import PROTOCOL_VERSION
from protocol.codec import decode, encode
from protocol.envelope import KINDS, READY, decode_header, encode_header
from protocol.errors import ProtocolError
from tests.test_bridge_core import Clock, FakeOutbox

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
        "op": st.one_of(st.sampled_from(["get_clients", "events_since", "bridge_status", "delete_client"]), scalars),
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
def test_arbitrary_envelopes_never_crash_the_bridge(header: dict, body: object) -> None:
    out = FakeOutbox()
    core = BridgeCore(BridgeConfig(), out, Clock())
    core.on_backend(
        [b"mock", b"", encode_header(READY, name="mock", mode="mock", ops=["get_clients", "delete_client"]), b""]
    )
    try:
        header_frame = encode(header)
        body_frame = encode(body)
    except ProtocolError:
        return  # not representable in msgpack (e.g. integers beyond 64 bits)
    core.on_frontend([b"c", header_frame, body_frame])
    core.on_backend([b"mock", b"c", header_frame, body_frame])
    core.on_timer()
    for _, frames in out.clients:  # every reply the client gets is a well-formed standard reply
        reply = decode(frames[1])
        assert isinstance(reply["success"], bool) and isinstance(reply["message"], str)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=50), min_size=0, max_size=5))
def test_arbitrary_frames_never_crash_the_bridge(frames: list[bytes]) -> None:
    core = BridgeCore(BridgeConfig(), FakeOutbox(), Clock())
    core.on_frontend([b"c", *frames])
    core.on_backend([b"b", *frames])
    core.on_timer()
