"""racoonctl's SAOPTS arguments, parsed into an ``AdminIndex`` with errors that say what is wrong.

The syntax racoonctl's code accepts (``get_proto_and_index``, ``get_index``, ``get_comindex``)::

    isakmp   inet|inet6 SRC DST [ULPROTO]
    esp|ah   inet|inet6 SRC[/PLEN][[PORT]] DST[/PLEN][[PORT]] [any|icmp|tcp|udp|gre]

Addresses are numeric (racoonctl asks getaddrinfo for ``AI_NUMERICHOST``); an IPv6 address may
carry ``%scope`` (an interface name or number). The upper-layer protocol defaults to ``any``.

Where we differ from racoonctl, on purpose:

* racoonctl defaults a missing prefix length to 32 for both families, which makes an IPv6
  selector a /32; we default to the host length (32 or 128).
* racoonctl's splitter fails on every form with a ``[PORT]`` (it looks for ``]`` in the
  wrong string), so ports never worked; here ``10.0.0.1/32[500]`` and ``10.0.0.1[500]`` do.
* racoonctl silently accepts ``10.0.0.1/abc`` (``atoi`` gives 0) and an address of the wrong
  family; here both are errors.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from .errors import SaoptsError
from .protocol import PROTO_WORDS, UL_PROTO_WORDS, AdminIndex, AdminProto, SockAddr

FAMILY_WORDS = {"inet": 4, "inet6": 6}
INDEX_PROTOS = (AdminProto.ADMIN_PROTO_ISAKMP, AdminProto.ADMIN_PROTO_ESP,
                AdminProto.ADMIN_PROTO_AH)

_ENDPOINT = re.compile(r"^(?P<addr>[^/\[\]]*)(?:/(?P<plen>[^/\[\]]*))?(?:\[(?P<port>[^\[\]]*)\])?$")


def parse_proto(word: str, allowed: tuple[AdminProto, ...] = tuple(AdminProto)) -> AdminProto:
    """A racoonctl protocol word (``isakmp``, ``esp``...), restricted to ``allowed``."""
    proto = PROTO_WORDS.get(word)
    names = ", ".join(w for w, p in PROTO_WORDS.items() if p in allowed)
    if proto is None:
        raise SaoptsError(f"unknown protocol '{word}': expected {names}", word)
    if proto not in allowed:
        raise SaoptsError(f"protocol '{word}' cannot be used here: expected {names}", word)
    return proto


def parse_family(word: str) -> int:
    """``inet`` → 4, ``inet6`` → 6."""
    try:
        return FAMILY_WORDS[word]
    except KeyError:
        raise SaoptsError(f"unknown address family '{word}': expected inet or inet6",
                          word) from None


def parse_address(text: str, version: int, family_word: str | None = None) -> SockAddr:
    """A numeric address (IPv6 with optional ``%scope``) of the given IP version."""
    addr_text, _, scope = text.partition("%")
    try:
        address = ipaddress.ip_address(addr_text)
    except ValueError:
        raise SaoptsError(f"bad address '{text}'", text) from None
    family_word = family_word or ("inet6" if version == 6 else "inet")
    if address.version != version:
        raise SaoptsError(f"{family_word} given but {addr_text} is IPv{address.version}", text)
    scope_id = 0
    if scope:
        if address.version != 6:
            raise SaoptsError(f"bad address '{text}': only IPv6 addresses have a %scope", text)
        if scope.isdigit():
            scope_id = int(scope)
        else:
            try:
                scope_id = socket.if_nametoindex(scope)
            except OSError:
                raise SaoptsError(f"unknown interface '{scope}' in '{text}'", text) from None
    return SockAddr(address, 0, 0, scope_id)


def parse_endpoint(text: str, version: int, family_word: str | None = None) -> tuple[SockAddr, int]:
    """``ADDR[/PLEN][[PORT]]`` → (address with port, prefix length)."""
    m = _ENDPOINT.match(text)
    if m is None or not m["addr"]:
        raise SaoptsError(f"bad address '{text}': expected ADDRESS[/PREFIXLEN][[PORT]]", text)
    sock = parse_address(m["addr"], version, family_word)
    max_len = 32 if version == 4 else 128
    plen = max_len
    if m["plen"] is not None:
        if not m["plen"].isdigit() or int(m["plen"]) > max_len:
            raise SaoptsError(f"bad prefix length '{m['plen']}' in '{text}': expected "
                              f"0..{max_len}", text)
        plen = int(m["plen"])
    port = 0
    if m["port"] is not None:
        word = m["port"]
        if word == "any":
            port = 0
        elif word.isdigit() and int(word) <= 0xFFFF:
            port = int(word)
        else:
            raise SaoptsError(f"bad port '{word}' in '{text}': expected 0..65535 or any", text)
    return SockAddr(sock.address, port, 0, sock.scope_id), plen


def parse_ul_proto(word: str) -> int:
    """``any``, ``icmp``, ``tcp``, ``udp`` or ``gre``."""
    try:
        return UL_PROTO_WORDS[word]
    except KeyError:
        names = ", ".join(UL_PROTO_WORDS)
        raise SaoptsError(f"unknown upper-layer protocol '{word}': expected {names}",
                          word) from None


def parse_index(args: list[str]) -> AdminIndex:
    """``inet|inet6 SRC DST [ULPROTO]`` → the index (racoonctl's ``get_index``)."""
    if len(args) < 3:
        raise SaoptsError("insufficient arguments: expected inet|inet6 SRC DST [ULPROTO]")
    if len(args) > 4:
        raise SaoptsError(f"too many arguments: '{args[4]}' after the upper-layer protocol",
                          args[4])
    version = parse_family(args[0])
    src, prefs = parse_endpoint(args[1], version, args[0])
    dst, prefd = parse_endpoint(args[2], version, args[0])
    ul_proto = parse_ul_proto(args[3]) if len(args) == 4 else 0
    return AdminIndex(src, dst, prefs, prefd, ul_proto)


def parse_saopts(args: list[str]) -> tuple[AdminProto, AdminIndex]:
    """SAOPTS (``isakmp|esp|ah FAMILY SRC DST [ULPROTO]``) → (protocol, index)."""
    if not args:
        raise SaoptsError("insufficient arguments: expected isakmp|esp|ah inet|inet6 SRC DST")
    proto = parse_proto(args[0], INDEX_PROTOS)
    return proto, parse_index(args[1:])
