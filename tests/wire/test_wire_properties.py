"""Property tests: decoding is total (a Message or one WireError) and round-trips exactly."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_samples import ike_scan_datagrams, real_captures, real_ike_datagrams, sample_messages

from pyracoon.wire import (
    KE,
    SA,
    Attribute,
    Cert,
    CertRequest,
    Delete,
    Fragment,
    Hash,
    Identification,
    IDType,
    Message,
    ModeConfig,
    NatD,
    NatOA,
    Nonce,
    Notification,
    Proposal,
    Signature,
    Transform,
    VendorID,
    WireError,
    decode_message,
    decode_payloads,
    encode_message,
)
from pyracoon.wire.payloads import ID_DATA_SIZES, PAYLOAD_CLASSES

SEEDS = (
    [encode_message(m) for m in sample_messages()]
    + [raw for doc in real_captures() for _, raw in real_ike_datagrams(doc)]
    + ike_scan_datagrams()
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_total(raw: bytes) -> None:
    """The contract: either a message that re-encodes to ``raw``, or a WireError."""
    try:
        msg = decode_message(raw)
    except WireError as err:
        assert err.notify is not None
        assert err.offset is None or 0 <= err.offset <= len(raw)
        return
    assert encode_message(msg) == raw


@FAST
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    check_total(raw)


@FAST
@given(
    np=st.sampled_from(sorted(PAYLOAD_CLASSES) + [2, 3, 99]),
    etype=st.sampled_from([1, 2, 4, 5, 6, 32, 33]),
    body=st.binary(max_size=200),
)
def test_valid_header_random_body(np: int, etype: int, body: bytes) -> None:
    """Get past the header checks so the payload parsers see the random bytes."""
    raw = bytes(16) + struct.pack("!BBBBII", np, 0x10, etype, 0, 0, 28 + len(body)) + body
    check_total(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[pos:]
        elif kind == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and raw:
            del raw[pos : pos + draw(st.integers(1, 8))]
    return bytes(raw)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_packets(raw: bytes) -> None:
    check_total(raw)


@st.composite
def length_fixed(draw: st.DrawFn) -> bytes:
    """Mutations that keep the header length honest, so payload-level checks are reached."""
    raw = bytearray(draw(mutated()))
    if len(raw) >= 28:
        raw[24:28] = len(raw).to_bytes(4, "big")
        raw[17] = 0x10
        raw[19] &= 0x06  # plaintext, so the payload chain is parsed
    return bytes(raw)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(length_fixed())
def test_mutated_packets_with_fixed_length(raw: bytes) -> None:
    check_total(raw)


@FAST
@given(first=st.sampled_from(sorted(PAYLOAD_CLASSES)), body=st.binary(max_size=200))
def test_decrypted_body_is_total(first: int, body: bytes) -> None:
    try:
        decoded = decode_payloads(first, body)
    except WireError:
        return
    assert decoded.encode() == body


# --------------------------------------------------------------------------- built objects
u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
blob = st.binary(max_size=40)
attributes = st.lists(
    st.builds(Attribute, st.integers(0, 0x7FFF), st.one_of(u16, blob)), max_size=5
).map(tuple)
transforms = st.lists(
    st.builds(Transform, u8, u8, attributes, reserved2=u16, reserved=u8), min_size=1, max_size=3
).map(tuple)
spi_for = {
    1: st.sampled_from([b"", bytes(8), bytes(16)]),
    2: st.binary(min_size=4, max_size=4),
    3: st.binary(min_size=4, max_size=4),
    4: st.sampled_from([b"ab", b"abcd"]),
    9: blob,
}
proposals = st.sampled_from(sorted(spi_for)).flatmap(
    lambda proto: st.builds(Proposal, u8, st.just(proto), spi_for[proto], transforms, reserved=u8)
)


def ident(id_type: int) -> st.SearchStrategy[Identification]:
    size = ID_DATA_SIZES.get(id_type)
    data = st.binary(min_size=size, max_size=size) if size is not None else blob
    return st.builds(Identification, st.just(id_type), data, u8, u16, reserved=u8)


payloads = st.one_of(
    st.builds(
        SA,
        st.lists(proposals, min_size=1, max_size=3).map(tuple),
        st.just(1),
        st.sampled_from([0, 1]),
        reserved=u8,
    ),
    st.sampled_from(list(IDType)).flatmap(ident),
    *(st.builds(c, blob, reserved=u8) for c in (KE, Hash, Signature, Nonce, VendorID)),
    st.builds(NatD, blob, payload_type=st.sampled_from([15, 20, 130])),
    st.builds(
        NatOA.from_address,
        st.ip_addresses(),
        payload_type=st.sampled_from([16, 21, 131]),
        reserved3=st.integers(0, 0xFFFFFF),
    ),
    st.builds(Cert, u8, blob),
    st.builds(CertRequest, u8, blob),
    st.builds(Notification, u16, u8, st.binary(max_size=16), blob, u32),
    st.sampled_from([0, 2, 3, 4, 8, 16]).flatmap(
        lambda n: st.builds(
            Delete,
            st.sampled_from([{16: 1, 4: 3, 2: 4}.get(n, 9)]),  # a protocol allowing size n
            st.lists(st.binary(min_size=n, max_size=n), max_size=4).map(tuple),
            u32,
            st.just(n),
        )
    ),
    st.builds(ModeConfig, u8, u16, attributes, reserved2=u8),
    st.builds(Fragment, u16, u8, u8, blob),
)


@FAST
@given(
    st.lists(payloads, max_size=6).map(tuple),
    st.sampled_from([1, 2, 4, 5, 6, 32]),
    u32,
    st.sampled_from([0, 2, 4, 6]),
)
def test_built_messages_round_trip(ps: tuple, etype: int, msgid: int, flags: int) -> None:
    msg = Message(b"\x01" * 8, b"\x02" * 8, etype, msgid, ps, flags)
    raw = encode_message(msg)
    assert decode_message(raw) == msg
    for p in ps:
        assert p.encode()[4:] == p.body_bytes()


# --------------------------------------------------------------------------- framed random
def framed(np: int, body: bytes) -> bytes:
    return struct.pack("!BBH", np, 0, (4 + len(body)) & 0xFFFF) + body


@st.composite
def random_transform_chain(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 3))
    out = b""
    for i in range(n):
        np = draw(st.sampled_from([0, 3, 3 if i < n - 1 else 0, 4]))
        attrs = draw(
            st.lists(
                st.one_of(
                    u16.map(lambda t: struct.pack("!HH", 0x8000 | t, 1)),
                    st.tuples(st.integers(0, 0x7FFF), blob).map(
                        lambda tv: struct.pack("!HH", tv[0], len(tv[1])) + tv[1]
                    ),
                    st.binary(max_size=3),
                ),
                max_size=4,
            )
        )
        out += framed(np, draw(st.binary(min_size=4, max_size=4)) + b"".join(attrs))
    return out


@st.composite
def random_sa_body(draw: st.DrawFn) -> bytes:
    body = struct.pack("!II", draw(st.sampled_from([1, 1, 0])), draw(st.sampled_from([1, 0, 2])))
    n = draw(st.integers(0, 3))
    for i in range(n):
        np = draw(st.sampled_from([0, 2, 2 if i < n - 1 else 0, 3]))
        spi = draw(st.binary(max_size=17))
        head = struct.pack(
            "!BBBB",
            draw(u8),
            draw(st.integers(0, 5)),
            draw(st.sampled_from([len(spi), len(spi), draw(u8)])),
            draw(st.integers(0, 4)),
        )
        body += framed(np, head + spi + draw(random_transform_chain()))
    return body


@st.composite
def random_chain(draw: st.DrawFn) -> tuple[int, bytes]:
    """A payload chain whose generic headers are consistent but whose bodies are random."""
    types = draw(st.lists(st.sampled_from(sorted(PAYLOAD_CLASSES)), min_size=1, max_size=4))
    out = b""
    for i, t in enumerate(types):
        nxt = types[i + 1] if i + 1 < len(types) else 0
        body = draw(random_sa_body()) if t == 1 else draw(st.binary(max_size=40))
        out += framed(nxt, body)
    return types[0], out + draw(st.sampled_from([b"", b"", b"\x00\x03"]))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_chain(), st.sampled_from([2, 4, 5, 32]))
def test_framed_random_payloads(chain: tuple[int, bytes], etype: int) -> None:
    first, body = chain
    raw = bytes(16) + struct.pack("!BBBBII", first, 0x10, etype, 0, 0, 28 + len(body)) + body
    check_total(raw)
    try:
        decoded = decode_payloads(first, body)
    except WireError:
        return
    assert decoded.encode() == body
