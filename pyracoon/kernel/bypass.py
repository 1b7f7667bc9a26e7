"""A per-socket IPsec policy of type bypass on each IKE socket, as racoon's setsockopt_bypass().

Why: an SPD entry such as ``spdadd ::/0 ::/0 any -P out ipsec esp/transport//use;`` covers IKE's
own UDP 500 too. With ``require`` between two hosts the kernel drops IKE's datagrams for want of
the very SA IKE is there to negotiate, so no negotiation can ever start. With ``use`` they leave
in the clear only until an SA exists and then go inside it, so once one side has lost its SAs
(a restart) the other's IKE is unreadable to it and nothing can be renegotiated. A socket's own
policy is looked up before the SPD, so a bypass on the socket lets its datagrams pass in the
clear both ways, whatever the SPD says.

Why in :mod:`pyracoon.kernel`, though it is not reached through ``open_kernel``: the option's
argument is a kernel structure (PF_KEY's ``sadb_x_policy`` or XFRM's ``xfrm_userpolicy_info``),
and those are this layer's to build; the daemon only asks for "a bypass on this socket".  It
always concerns the host's real network stack -- also when ``--kernel`` names a simulated
kernel -- since the daemon's UDP sockets are real sockets.

How, per system:

* The KAME interface, ``IP_IPSEC_POLICY``/``IPV6_IPSEC_POLICY`` with a ``struct sadb_x_policy``
  (the PF_KEY extension itself: length, exttype X_POLICY, type BYPASS, direction; no
  ipsecrequests, so no levels), once for in and once for out. BSD has only this. Linux
  implements it in ``af_key``: the kernel asks each loaded key manager to compile the option,
  so it works only while ``af_key`` is loaded.
* Linux's own interface, ``IP_XFRM_POLICY``/``IPV6_XFRM_POLICY`` with a ``struct
  xfrm_userpolicy_info`` (``linux/xfrm.h``), compiled by ``xfrm_user``: the fallback on a Linux
  without ``af_key``. Its selector must name the socket's family or the kernel says EINVAL.

Both need CAP_NET_ADMIN. racoon does not listen on an address whose socket it could not give
the bypass; here a failure is one warning (the caller logs :class:`BypassError`'s text) and the
socket serves anyway, since peers that no policy covers can still be reached through it.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass

from .pfkey import Policy, encode_extension
from .sadb import Direction, PolicyType
from .xfrm_structs import (
    XFRM_POLICY_ALLOW,
    XFRM_POLICY_IN,
    XFRM_POLICY_OUT,
    LifetimeCfg,
    Selector,
    UserpolicyInfo,
)


@dataclass(frozen=True)
class SocketOptions:
    """The option numbers of one system (they differ between Linux and the BSDs)."""

    ipsec_v4: int
    ipsec_v6: int
    xfrm_v4: int | None = None
    xfrm_v6: int | None = None


LINUX = SocketOptions(ipsec_v4=16, ipsec_v6=34, xfrm_v4=17, xfrm_v6=35)
#: ``netinet/in.h`` and KAME's ``netinet6/in6.h``; NetBSD numbers IP_IPSEC_POLICY differently.
FREEBSD = SocketOptions(ipsec_v4=21, ipsec_v6=28)
NETBSD = SocketOptions(ipsec_v4=22, ipsec_v6=28)


def native_options(platform: str = sys.platform) -> SocketOptions | None:
    """This system's option numbers; None where there is no per-socket IPsec policy (OpenBSD)."""
    if platform.startswith("linux"):
        return LINUX
    if platform.startswith("netbsd"):
        return NETBSD
    if platform.startswith(("freebsd", "darwin", "dragonfly")):
        return FREEBSD
    return None


class BypassError(Exception):
    """The bypass could not be set; the text says what each attempt got."""


def sadb_bypass(direction: Direction) -> bytes:
    """The ``struct sadb_x_policy`` of a bypass policy for ``direction`` (16 bytes)."""
    return encode_extension(Policy(PolicyType.BYPASS, int(direction)))


def xfrm_bypass(family: int, direction: int) -> bytes:
    """The ``struct xfrm_userpolicy_info`` that allows all of ``family`` in ``direction``.

    ``direction`` is XFRM_POLICY_IN or XFRM_POLICY_OUT. An empty selector of the socket's
    family matches all its traffic; zero lifetimes mean none; index 0 lets the kernel choose.
    The layout is the XFRM backend's one (``pyracoon.kernel.xfrm_structs``), checked against
    ``linux/xfrm.h``.
    """
    return UserpolicyInfo(
        sel=Selector(family=family),
        lft=LifetimeCfg(0, 0, 0, 0, 0, 0, 0, 0),
        dir=direction,
        action=XFRM_POLICY_ALLOW,
    ).pack()


def set_bypass(sock: socket.socket, options: SocketOptions | None = None) -> str:
    """Make ``sock`` bypass IPsec policy both ways; returns the option that did it.

    The KAME option first (racoon's way, and the only one on BSD), then on Linux the XFRM one.
    Each is set for in and out; a policy set again replaces the socket's previous one for that
    direction, so a half-done first attempt is simply overwritten by the second.
    """
    opts = options if options is not None else native_options()
    if opts is None:
        raise BypassError(f"{sys.platform} has no per-socket IPsec policy")
    family = sock.family
    # Linux implements the KAME option in af_key; elsewhere it is the kernel's IPsec itself.
    kame_absent = "af_key is not loaded" if opts is LINUX else "the kernel has no IPsec"
    kame = [sadb_bypass(Direction.INBOUND), sadb_bypass(Direction.OUTBOUND)]
    xfrm = [xfrm_bypass(family, XFRM_POLICY_IN), xfrm_bypass(family, XFRM_POLICY_OUT)]
    if family == socket.AF_INET:
        level = socket.IPPROTO_IP
        attempts = [
            ("IP_IPSEC_POLICY", opts.ipsec_v4, kame, kame_absent),
            ("IP_XFRM_POLICY", opts.xfrm_v4, xfrm, "xfrm_user is not loaded"),
        ]
    elif family == socket.AF_INET6:
        level = socket.IPPROTO_IPV6
        attempts = [
            ("IPV6_IPSEC_POLICY", opts.ipsec_v6, kame, kame_absent),
            ("IPV6_XFRM_POLICY", opts.xfrm_v6, xfrm, "xfrm_user is not loaded"),
        ]
    else:
        raise BypassError(f"not an IP socket (family {family})")
    failures: list[str] = []
    for name, number, bufs, unsupported in attempts:
        if number is None:
            continue
        try:
            for buf in bufs:
                sock.setsockopt(level, number, buf)
        except OSError as e:
            failures.append(f"{name}: {_reason(e, unsupported)}")
            continue
        return name
    raise BypassError("; ".join(failures))


def _reason(e: OSError, unsupported: str) -> str:
    """The errno's text, and what it means for this option.

    Linux hands the option to each loaded key manager in turn; one that does not implement it
    answers EOPNOTSUPP, so that errno means the module that does is absent.
    """
    text = os.strerror(e.errno) if e.errno else str(e)
    hint = {
        errno.EPERM: "needs CAP_NET_ADMIN",
        errno.EOPNOTSUPP: unsupported,
        errno.ENOPROTOOPT: "the kernel has no IPsec",
    }.get(e.errno or 0)
    return f"{text} ({hint})" if hint else text
