"""libipsec's policy language: ``ipsec_set_policy`` (text -> X_POLICY) and ``ipsec_dump_policy``
(whose text is :func:`pyracoon.kernel.dump.dump_policy`, shared with the daemon).

The text after setkey's ``-P`` is handed to this separate little grammar::

    DIR [priority|prio (N | -N | low|def|high (+|-) N)] ACTION RULE...
    DIR                                   (spddelete: the direction alone)
    RULE := PROTO/MODE[/[ADDRESSES][/[LEVEL]]]
    ADDRESSES := A-B | A[port]-B[port] | me-any (out only) | any-me (in only)
    LEVEL := default | use | require | unique | unique:N

Priorities follow Linux (lower number wins): ``prio N`` means N above the default, so it is
stored as ``def - N``; ``prio def + N`` likewise ``def - N`` and ``prio def - N`` ``def + N``.
A policy without a priority gets ``def`` (0x80000000), because Linux setkey is built with
``HAVE_PFKEY_POLICY_PRIORITY``. The dump inverts exactly that arithmetic.

Error messages are libipsec's ``ipsec_strerror`` texts (``Invalid ipsec mode``...), since
setkey prints them as ``line N: <text> at [<policy>]``.
"""

from __future__ import annotations

import ipaddress
import re

from pyracoon.kernel import dump
from pyracoon.kernel.dump import EIPSEC_INVAL_DIR, EIPSEC_INVAL_LEVEL
from pyracoon.kernel.pfkey import IPAddress, IpsecRequest, Policy
from pyracoon.kernel.sadb import (
    MANUAL_REQID_MAX,
    Direction,
    IpProto,
    Level,
    Mode,
    PolicyType,
    Priority,
)

from .errors import PolicySyntaxError

# ipsec_strerror texts (libipsec/ipsec_strerror.c), spelling mistakes included; the ones the dump
# uses too are the dump's (pyracoon.kernel.dump).
EIPSEC_INVAL_ARGUMENT = "Invalid argument"
EIPSEC_INVAL_ADDRESS = "Invalid address specification"
EIPSEC_NO_PROTO = "No protocol specified"
EIPSEC_FAMILY_MISMATCH = "Family mismatch"
EIPSEC_FEW_ARGUMENTS = "Too few arguments"
EIPSEC_INVAL_PRIORITY_OFFSET = "Priority offset not in valid range [-2147483647, 2147483648]"
EIPSEC_INVAL_PRIORITY_BASE_OFFSET = (
    "Priority offset from base not in valid range [0, 1073741823] for negative offsets and "
    "[0, 1073741824] for positive offsets"
)

PRIORITY_OFFSET_POSITIVE_MAX = 0x3FFFFFFF
PRIORITY_OFFSET_NEGATIVE_MAX = 0x40000000
INT32_MIN = -(2**31)

_DIRECTIONS = {"in": Direction.INBOUND, "out": Direction.OUTBOUND, "fwd": Direction.FWD}
_ACTIONS = {
    "discard": PolicyType.DISCARD,
    "none": PolicyType.NONE,
    "ipsec": PolicyType.IPSEC,
    "bypass": PolicyType.BYPASS,
    "entrust": PolicyType.ENTRUST,
}
_PROTOCOLS = {"esp": IpProto.ESP, "ah": IpProto.AH, "ipcomp": IpProto.IPCOMP}
_MODES = {"transport": Mode.TRANSPORT, "tunnel": Mode.TUNNEL}
_LEVELS = {
    "default": Level.DEFAULT,
    "use": Level.USE,
    "require": Level.REQUIRE,
    "unique": Level.UNIQUE,
}
_PRIO_BASES = {"low": Priority.LOW, "def": Priority.DEFAULT, "high": Priority.HIGH}
_KEYWORDS = (
    set(_DIRECTIONS)
    | set(_ACTIONS)
    | set(_PROTOCOLS)
    | set(_MODES)
    | set(_LEVELS)
    | set(_PRIO_BASES)
    | {"priority", "prio", "me", "any"}
)

_TOKEN = re.compile(
    r"(?P<ws>[ \t\n]+)"
    r"|(?P<port>\[[0-9]+\])"
    r"|(?P<word>[A-Za-z0-9:._][A-Za-z0-9:._]*(?:%[A-Za-z0-9]+)?)"
    r"|(?P<punct>[/\-+])"
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PolicySyntaxError(
                EIPSEC_INVAL_ARGUMENT, f'libipsec: syntax error while parsing "{text[pos]}"'
            )
        if m.lastgroup != "ws":
            out.append(m.group(0))
        pos = m.end()
    return out


class _Cursor:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def syntax_error(self) -> PolicySyntaxError:
        tok = self.peek()
        shown = tok if tok is not None else ""
        return PolicySyntaxError(
            EIPSEC_INVAL_ARGUMENT, f'libipsec: syntax error while parsing "{shown}"'
        )


def _parse_address(text: str, port: str | None) -> tuple[IPAddress, int]:
    """A numeric tunnel endpoint (``AI_NUMERICHOST``), with an optional ``[port]``."""
    host, _, scope = text.partition("%")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError as e:
        raise PolicySyntaxError(
            "Name or service not known", f'libipsec: invalid IP address while parsing "{text}"'
        ) from e
    if scope and addr.version == 4:
        raise PolicySyntaxError(EIPSEC_INVAL_ADDRESS)
    port_no = int(port[1:-1]) if port else 0
    if port_no > 0xFFFF:
        raise PolicySyntaxError("Servname not supported for ai_socktype")
    return addr, port_no


def parse_policy(text: str) -> Policy:
    """``ipsec_set_policy``: the policy text after ``-P`` as an X_POLICY extension."""
    cur = _Cursor(_tokens(text))
    word = cur.peek()
    if word not in _DIRECTIONS:
        raise cur.syntax_error()
    direction = _DIRECTIONS[cur.take()]
    if cur.peek() is None:
        # "DIR" alone: what spddelete sends (policy type ignored by the kernel, no priority).
        return Policy(policy_type=PolicyType.DISCARD, dir=direction, priority=0)
    priority: int = Priority.DEFAULT
    if cur.peek() in ("priority", "prio"):
        cur.take()
        priority = _parse_priority(cur)
    action = cur.peek()
    if action not in _ACTIONS:
        raise cur.syntax_error()
    policy_type = _ACTIONS[cur.take()]
    policy = Policy(policy_type=policy_type, dir=direction, priority=priority & 0xFFFFFFFF)
    while cur.peek() is not None:
        policy.requests.append(_parse_rule(cur, policy_type, direction))
    return policy


def _parse_priority(cur: _Cursor) -> int:
    tok = cur.peek()
    if tok is not None and tok.isdigit():
        offset = -int(cur.take())
        if offset < INT32_MIN:
            raise PolicySyntaxError(EIPSEC_INVAL_PRIORITY_OFFSET)
        return (Priority.DEFAULT + offset) & 0xFFFFFFFF
    if tok == "-":
        cur.take()
        num = cur.peek()
        if num is None or not num.isdigit():
            raise cur.syntax_error()
        offset = int(cur.take())
        if offset > 2**31 - 1:
            raise PolicySyntaxError(EIPSEC_INVAL_PRIORITY_OFFSET)
        return (Priority.DEFAULT + offset) & 0xFFFFFFFF
    if tok in _PRIO_BASES:
        base = _PRIO_BASES[cur.take()]
        sign = cur.peek()
        if sign not in ("+", "-"):
            return base
        cur.take()
        num = cur.peek()
        if num is None or not num.isdigit():
            raise cur.syntax_error()
        offset = int(cur.take())
        # higher priority means a smaller number on Linux: "+" subtracts
        if sign == "+":
            if offset > PRIORITY_OFFSET_NEGATIVE_MAX:
                raise PolicySyntaxError(EIPSEC_INVAL_PRIORITY_BASE_OFFSET)
            return (base - offset) & 0xFFFFFFFF
        if offset > PRIORITY_OFFSET_POSITIVE_MAX:
            raise PolicySyntaxError(EIPSEC_INVAL_PRIORITY_BASE_OFFSET)
        return (base + offset) & 0xFFFFFFFF
    raise cur.syntax_error()


def _parse_rule(cur: _Cursor, policy_type: int, direction: int) -> IpsecRequest:
    proto = cur.peek()
    if proto not in _PROTOCOLS:
        raise cur.syntax_error()
    req = IpsecRequest(proto=_PROTOCOLS[cur.take()], mode=Mode.ANY, level=Level.DEFAULT)
    if cur.peek() != "/":
        raise PolicySyntaxError(EIPSEC_FEW_ARGUMENTS)
    cur.take()
    mode = cur.peek()
    if mode not in _MODES:
        if mode is None or mode in _PROTOCOLS:
            raise PolicySyntaxError(EIPSEC_FEW_ARGUMENTS)
        raise cur.syntax_error()
    req.mode = _MODES[cur.take()]
    if cur.peek() == "/":
        cur.take()
        if cur.peek() != "/":
            _parse_addresses(cur, req, direction)
        if cur.peek() == "/":
            cur.take()
            _parse_level(cur, req)
    _check_rule(req, policy_type)
    return req


def _is_address_word(tok: str | None) -> bool:
    return tok is not None and tok not in _KEYWORDS and tok not in ("/", "-", "+")


def _parse_addresses(cur: _Cursor, req: IpsecRequest, direction: int) -> None:
    first = cur.peek()
    if first in ("me", "any"):
        cur.take()
        if cur.peek() != "-":
            raise cur.syntax_error()
        cur.take()
        second = cur.peek()
        if (first, second) == ("me", "any"):
            if direction != Direction.OUTBOUND:
                raise PolicySyntaxError(EIPSEC_INVAL_DIR)
        elif (first, second) == ("any", "me"):
            if direction != Direction.INBOUND:
                raise PolicySyntaxError(EIPSEC_INVAL_DIR)
        else:
            raise cur.syntax_error()
        cur.take()
        return
    if not _is_address_word(first):
        if first is None or first in _LEVELS or first in _PROTOCOLS:
            return  # "esp/transport/" then nothing, a level or the next rule: no addresses
        raise cur.syntax_error()
    src_text = cur.take()
    src_port = cur.take() if (cur.peek() or "").startswith("[") else None
    if cur.peek() != "-":
        raise cur.syntax_error()
    cur.take()
    if not _is_address_word(cur.peek()):
        raise cur.syntax_error()
    dst_text = cur.take()
    dst_port = cur.take() if (cur.peek() or "").startswith("[") else None
    if (src_port is None) != (dst_port is None):
        raise cur.syntax_error()
    req.src, req.src_port = _parse_address(src_text, src_port)
    req.dst, req.dst_port = _parse_address(dst_text, dst_port)


def _parse_level(cur: _Cursor, req: IpsecRequest) -> None:
    tok = cur.peek()
    if tok is None or tok in _PROTOCOLS:
        return  # "proto/mode/addrs/" : default level
    m = re.fullmatch(r"unique:([0-9]+)", tok)
    if m:
        cur.take()
        reqid = int(m.group(1))
        if reqid > MANUAL_REQID_MAX:
            raise PolicySyntaxError(EIPSEC_INVAL_LEVEL)
        req.level, req.reqid = Level.UNIQUE, reqid
        return
    if tok not in _LEVELS:
        raise cur.syntax_error()
    req.level = _LEVELS[cur.take()]
    req.reqid = 0


def _check_rule(req: IpsecRequest, policy_type: int) -> None:
    """libipsec ``rule_check``: only an ``ipsec`` policy's rules are checked."""
    if policy_type != PolicyType.IPSEC:
        return
    if req.src is None and req.dst is None:
        if req.mode != Mode.TRANSPORT:
            raise PolicySyntaxError(EIPSEC_INVAL_ADDRESS)
    elif req.src is not None and req.dst is not None and req.src.version != req.dst.version:
        raise PolicySyntaxError(EIPSEC_FAMILY_MISMATCH)


# ---------------------------------------------------------------------------------------------
# dump (ipsec_dump_policy)


def dump_policy(policy: Policy, delimiter: str = " ", with_ports: bool = False) -> str:
    """``ipsec_dump_policy`` for setkey: the shared dump, its error as setkey's error type.

    Raises ``PolicySyntaxError`` with libipsec's message for values it cannot print.
    """
    try:
        return dump.dump_policy(policy, delimiter, with_ports)
    except dump.PolicyDumpError as e:
        raise PolicySyntaxError(e.message) from None
