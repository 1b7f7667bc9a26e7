"""The IKE sockets' bypass policy: its bytes, the order of attempts, and the warning.

The expected bytes are written out by hand from the C definitions (``struct sadb_x_policy`` in
``linux/pfkeyv2.h``, ``struct xfrm_userpolicy_info`` in ``linux/xfrm.h``), not produced by our
encoder. That the kernel accepts them is shown in ``tests/lab/test_lab_bypass.py``.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import socket
import struct
import sys

import pytest

from pyracoon.daemon import service
from pyracoon.daemon.log import Log
from pyracoon.engine.events import Level
from pyracoon.kernel import bypass
from pyracoon.kernel.bypass import (
    LINUX,
    BypassError,
    native_options,
    sadb_bypass,
    set_bypass,
    xfrm_bypass,
)
from pyracoon.kernel.sadb import Direction

little_endian = pytest.mark.skipif(sys.byteorder != "little", reason="bytes written for LE")
lp64 = pytest.mark.skipif(
    struct.calcsize("P") != 8 or sys.byteorder != "little",
    reason="bytes written for a little-endian 64-bit ABI (x86-64, arm64)",
)


@little_endian
def test_sadb_x_policy_bypass_bytes() -> None:
    # u16 len (in 64-bit words), u16 exttype, u16 type, u8 dir, u8 reserved, u32 id, u32 prio
    assert sadb_bypass(Direction.INBOUND) == bytes(
        [0x02, 0x00, 0x12, 0x00, 0x04, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]
    )
    assert sadb_bypass(Direction.OUTBOUND) == bytes(
        [0x02, 0x00, 0x12, 0x00, 0x04, 0x00, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]
    )


def _xfrm_expected(family: int, direction: int) -> bytes:
    selector = (
        bytes(16)  # daddr (xfrm_address_t)
        + bytes(16)  # saddr
        + bytes(8)  # dport, dport_mask, sport, sport_mask
        + bytes([family, 0])  # family, u16 little-endian
        + bytes(3)  # prefixlen_d, prefixlen_s, proto
        + bytes(3)  # padding: ifindex is an int at offset 48
        + bytes(4)  # ifindex
        + bytes(4)  # user
    )
    assert len(selector) == 56
    lifetime_cfg = bytes(8 * 8)  # eight __u64 limits/expiry times, offset 56
    lifetime_cur = bytes(4 * 8)  # bytes, packets, add_time, use_time, offset 120
    tail = (
        bytes(4)  # priority, offset 152
        + bytes(4)  # index
        + bytes([direction, 0, 0, 0])  # dir, action ALLOW, flags, share
        + bytes(4)  # padding to the __u64 alignment of the whole struct
    )
    return selector + lifetime_cfg + lifetime_cur + tail


@lp64
@pytest.mark.parametrize("family", [2, 10])  # AF_INET, AF_INET6 as Linux numbers them
@pytest.mark.parametrize("direction", [0, 1])  # XFRM_POLICY_IN, XFRM_POLICY_OUT
def test_xfrm_userpolicy_info_bytes(family: int, direction: int) -> None:
    got = xfrm_bypass(family, direction)
    assert len(got) == 168
    assert got == _xfrm_expected(family, direction)


class FakeSocket:
    """Records setsockopt calls; ``refuse`` maps an option number to the errno it fails with."""

    def __init__(self, family: int, refuse: dict[int, int] | None = None) -> None:
        self.family = family
        self.refuse = refuse or {}
        self.calls: list[tuple[int, int, bytes]] = []

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        if option in self.refuse:
            raise OSError(self.refuse[option], "refused")
        self.calls.append((level, option, value))


def test_the_kame_option_first_for_in_then_out() -> None:
    s = FakeSocket(socket.AF_INET)
    assert set_bypass(s, LINUX) == "IP_IPSEC_POLICY"  # type: ignore[arg-type]
    assert s.calls == [
        (socket.IPPROTO_IP, 16, sadb_bypass(Direction.INBOUND)),
        (socket.IPPROTO_IP, 16, sadb_bypass(Direction.OUTBOUND)),
    ]


def test_without_af_key_linux_falls_back_to_the_xfrm_option() -> None:
    s = FakeSocket(socket.AF_INET6, refuse={34: errno.EOPNOTSUPP})
    assert set_bypass(s, LINUX) == "IPV6_XFRM_POLICY"  # type: ignore[arg-type]
    assert s.calls == [
        (socket.IPPROTO_IPV6, 35, xfrm_bypass(socket.AF_INET6, 0)),
        (socket.IPPROTO_IPV6, 35, xfrm_bypass(socket.AF_INET6, 1)),
    ]


def test_every_attempt_failing_says_what_each_got() -> None:
    s = FakeSocket(socket.AF_INET, refuse={16: errno.EOPNOTSUPP, 17: errno.EPERM})
    with pytest.raises(BypassError) as e:
        set_bypass(s, LINUX)  # type: ignore[arg-type]
    text = str(e.value)
    assert "IP_IPSEC_POLICY:" in text and "af_key is not loaded" in text
    assert "IP_XFRM_POLICY:" in text and "needs CAP_NET_ADMIN" in text


def test_bsd_has_only_the_kame_option() -> None:
    opts = native_options("freebsd14")
    assert opts is not None and (opts.ipsec_v4, opts.ipsec_v6) == (21, 28)
    s = FakeSocket(socket.AF_INET, refuse={21: errno.EINVAL})
    with pytest.raises(BypassError, match="^IP_IPSEC_POLICY: "):
        set_bypass(s, opts)  # type: ignore[arg-type]
    assert native_options("netbsd10") == bypass.NETBSD
    assert native_options("openbsd7") is None


def _log() -> tuple[Log, io.StringIO]:
    out = io.StringIO()
    return Log(Level.DEBUG, use_syslog=False, stream=out), out


def test_a_failed_bypass_is_one_warning_and_the_socket_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(sock: socket.socket) -> str:
        raise BypassError("IP_IPSEC_POLICY: Operation not permitted (needs CAP_NET_ADMIN)")

    monkeypatch.setattr(service, "set_bypass", refuse)
    log, out = _log()
    sock = service.bind_udp((ipaddress.ip_address("127.0.0.1"), 0), log)
    try:
        lines = out.getvalue().splitlines()
        assert len(lines) == 1
        assert "WARNING: IKE packets may be caught by IPsec policies: 127.0.0.1[0]: " in lines[0]
        assert lines[0].endswith("IP_IPSEC_POLICY: Operation not permitted (needs CAP_NET_ADMIN)")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"x", sock.getsockname())
            sock.settimeout(2)
            assert sock.recv(10) == b"x"
    finally:
        sock.close()


def test_a_set_bypass_is_a_debug_line(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[socket.socket] = []

    def take(sock: socket.socket) -> str:
        seen.append(sock)
        return "IPV6_XFRM_POLICY"

    monkeypatch.setattr(service, "set_bypass", take)
    log, out = _log()
    sock = service.bind_udp((ipaddress.ip_address("::1"), 0), log)
    try:
        assert seen == [sock]
        first = out.getvalue().splitlines()[0]
        assert first.endswith("DEBUG: ::1[0]: IPsec policy bypassed (IPV6_XFRM_POLICY)")
    finally:
        sock.close()
