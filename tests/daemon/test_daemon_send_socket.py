"""Which socket a datagram leaves from when its local address has no ISAKMP socket of ours."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

from pyracoon.daemon.service import Daemon, Listener
from pyracoon.engine.events import DatagramOut


class _Log:
    def debug(self, *a: object) -> None:
        pass


def _listeners(*addrs: str) -> dict:
    out = {}
    for a in addrs:
        ep = (ipaddress.ip_address(a), 500)
        out[ep] = Listener(ep, None)  # type: ignore[arg-type] - no socket is touched
    return out


def _pick(remote: str, *addrs: str) -> str | None:
    fake = SimpleNamespace(listeners=_listeners(*addrs), log=_Log())
    local = (ipaddress.ip_address("fe80::1"), 500)
    out = DatagramOut(b"", local, (ipaddress.ip_address(remote), 500))
    chosen = Daemon._fallback_listener(fake, out)  # type: ignore[arg-type]
    return None if chosen is None else str(chosen.endpoint[0])


def test_never_from_loopback_to_a_peer_off_this_host() -> None:
    # the daemon listens on ::1 and the host's global address; the ACQUIRE named another source
    assert _pick("2001:db8:77::5", "::1", "2001:db8:1::1") == "2001:db8:1::1"
    assert _pick("2001:db8:77::5", "::1") is None


def test_a_loopback_peer_is_reached_from_loopback() -> None:
    assert _pick("::1", "::1") == "::1"


def test_only_the_peers_family() -> None:
    assert _pick("192.0.2.9", "::1", "2001:db8:1::1") is None
