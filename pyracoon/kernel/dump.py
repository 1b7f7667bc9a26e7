"""SAs and policies for people: the text layouts of setkey's ``-D`` (pfkey_sadump), ``-DP``
(pfkey_spdump, with ``ipsec_dump_policy``), ``-v``/``-x`` (kdebug_sadb) and ``-l`` (shortdump),
byte for byte as ipsec-tools 0.8.2 prints them.

They live in the kernel layer, not in ``pyracoon.setkey``, because two programs print kernel
state the same way: ``pysetkey`` and the daemon (``racoonctl show-sa``); neither reaches into
the other's package. Algorithm names come from the one table (:mod:`pyracoon.crypto.algorithms`).

Every function takes a decoded ``Message`` and returns text ending in a newline; anything
that depends on the clock takes ``now`` (Unix seconds) so that tests and ``racoonctl show-sa``
can call them with a fixed time. Times print in the process's local time zone, as ctime(3)
does, without the weekday: ``Jan 25 16:24:59 2003``. A zero time prints as 20 spaces.

Trailing spaces matter: setkey prints every enumerated word as ``"%s "``, so the address line
ends in a space and so does the ``state=`` line.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
)

from . import ops, pfkey_codec
from .base import KernelSocket
from .pfkey import (
    HEADER,
    LINUX,
    SA,
    SA2,
    Address,
    Alg,
    Extension,
    Identity,
    IPAddress,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    NatTPort,
    NatTType,
    PfkeyDecodeError,
    Policy,
    Proposal,
    SecCtx,
    Supported,
    decode,
    encode,
)
from .protocols import IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH, protocol_name
from .sadb import (
    MANUAL_REQID_MAX,
    PF_KEY_V2,
    ExtType,
    IpProto,
    MsgType,
    PolicyType,
    Priority,
    SaState,
    SaType,
)

# ipsec_strerror texts (libipsec/ipsec_strerror.c) of ipsec_dump_policy, spelling included.
EIPSEC_INVAL_POLICY = "Invalid security policy"
EIPSEC_INVAL_PROTO = "Invalid ipsec protocol"
EIPSEC_INVAL_MODE = "Invalid ipsec mode"
EIPSEC_INVAL_LEVEL = "Invalid ipsec level"
EIPSEC_INVAL_DIR = "Invalid direciton"


class PolicyDumpError(ValueError):
    """A policy ``ipsec_dump_policy`` cannot print; ``message`` is libipsec's strerror text."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


NO_SAD_ENTRIES = "No SAD entries."
NO_SPD_ENTRIES = "No SPD entries."


# ---------------------------------------------------------------------------------------------
# names (libipsec pfkey_dump.c), from the one algorithm table


def _dump_names(rows: Iterable[Cipher | AuthAlgorithm | CompressionAlgorithm]) -> dict[int, str]:
    """SADB number -> the first setkey name of the first row with that number; 0 is ``none``."""
    out = {0: "none"}
    for row in rows:
        if row.sadb_id and row.setkey_names:
            out.setdefault(row.sadb_id, _DUMP_OVERRIDES.get(row.name, row.setkey_names[0]))
    return out


_DUMP_OVERRIDES = {"keyed-md5": "md5", "keyed-sha1": "sha"}
"""Where ``str_alg_auth`` of pfkey_dump.c prints another name than the lexer takes."""

ENCRYPTION_DUMP_NAMES: dict[int, str] = _dump_names(CIPHERS)
AUTHENTICATION_DUMP_NAMES: dict[int, str] = _dump_names(AUTH_ALGORITHMS)
COMPRESSION_DUMP_NAMES: dict[int, str] = _dump_names(IPCOMP_ALGORITHMS)

SATYPE_DUMP_NAMES: tuple[str, ...] = (
    "unspec",
    "unknown",
    "ah",
    "esp",
    "unknown",
    "rsvp",
    "ospfv2",
    "ripv2",
    "mip",
    "ipcomp",
    "policy",
    "tcp",
)
"""Indexed by ``sadb_msg_satype``; a larger value prints as its number."""

MODE_DUMP_NAMES: tuple[str, ...] = ("any", "transport", "tunnel")
STATE_DUMP_NAMES: tuple[str, ...] = ("larval", "mature", "dying", "dead")

def satype_dump_name(satype: int) -> str:
    """``GETMSGSTR(str_satype, ...)`` without its trailing space."""
    if 0 <= satype < len(SATYPE_DUMP_NAMES):
        return SATYPE_DUMP_NAMES[satype]
    return str(satype)


def format_time(t: int) -> str:
    """``str_time``: ctime(3) without the weekday and newline; 20 spaces for 0."""
    if t == 0:
        return " " * 20
    try:
        return time.ctime(t)[4:24]
    except (OverflowError, OSError, ValueError):
        return "?" * 20


def hexdump(data: bytes) -> str:
    """``ipsec_hexdump``: a space before every 4-byte group, a bare newline every 32 bytes."""
    out = []
    for i, b in enumerate(data):
        if i and i % 32 == 0:
            out.append("\n")
        if i % 4 == 0:
            out.append(" ")
        out.append(f"{b:02x}")
    return "".join(out)


def _table_name(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else str(value)


def _addr_text(a: Address) -> str:
    return format_address(a.addr, a.scope_id)


# ---------------------------------------------------------------------------------------------
# dump (ipsec_dump_policy)

_DIR_NAMES = ("any", "in", "out", "fwd", "in(socket)", "out(socket)")
_ACTION_NAMES = ("discard", "none", "ipsec", "entrust", "bypass")
_PROTO_NAMES: dict[int, str] = {IpProto.ESP: "esp", IpProto.AH: "ah", IpProto.IPCOMP: "ipcomp"}
_MODE_NAMES = ("any", "transport", "tunnel")
_LEVEL_NAMES = ("default", "use", "require", "unique")


def format_address(addr: IPAddress, scope_id: int = 0) -> str:
    """``getnameinfo(NI_NUMERICHOST)``: the compressed form, ``%scope`` for a scoped v6."""
    text = str(addr)
    if addr.version == 6 and scope_id:
        try:
            import socket

            text += "%" + socket.if_indextoname(scope_id)
        except OSError:
            text += f"%{scope_id}"
    return text


def _priority_text(priority: int) -> str:
    if priority == 0:
        return ""
    default = int(Priority.DEFAULT)
    if priority < (default // 4) * 3:
        base, name = int(Priority.HIGH), "prio high"
    elif priority < (default // 4) * 5:
        base, name = default, "prio def"
    else:
        base, name = int(Priority.LOW), "prio low"
    diff = (priority - base) & 0xFFFFFFFF
    if diff >= 2**31:
        diff -= 2**32
    offset = -diff  # the input's sign: "+" is towards the head of the list
    if offset == 0:
        return name
    op = "-" if offset < 0 else "+"
    return f"{name} {op} {abs(offset)}"


def dump_policy(policy: Policy, delimiter: str = " ", with_ports: bool = False) -> str:
    """``ipsec_dump_policy``: ``out prio def ipsec`` then each request after ``delimiter``.

    Raises ``PolicyDumpError`` with libipsec's message for values it cannot print.
    """
    if not 0 <= policy.dir < len(_DIR_NAMES):
        raise PolicyDumpError(EIPSEC_INVAL_DIR)
    if not 0 <= policy.policy_type < len(_ACTION_NAMES):
        raise PolicyDumpError(EIPSEC_INVAL_POLICY)
    words = [_DIR_NAMES[policy.dir]]
    prio = _priority_text(policy.priority)
    if prio:
        words.append(prio)
    words.append(_ACTION_NAMES[policy.policy_type])
    out = " ".join(words)
    if policy.policy_type != PolicyType.IPSEC:
        return out
    for req in policy.requests:
        out += delimiter + _dump_request(req, with_ports)
    return out


def _dump_request(req: IpsecRequest, with_ports: bool) -> str:
    proto = _PROTO_NAMES.get(req.proto)
    if proto is None:
        raise PolicyDumpError(EIPSEC_INVAL_PROTO)
    if not 0 <= req.mode < len(_MODE_NAMES):
        raise PolicyDumpError(EIPSEC_INVAL_MODE)
    if not 0 <= req.level < len(_LEVEL_NAMES):
        raise PolicyDumpError(EIPSEC_INVAL_LEVEL)
    addrs = ""
    if req.src is not None and req.dst is not None:
        if with_ports:
            addrs = f"{format_address(req.src)}[{req.src_port}]-"
            addrs += f"{format_address(req.dst)}[{req.dst_port}]"
        else:
            addrs = f"{format_address(req.src)}-{format_address(req.dst)}"
    text = f"{proto}/{_MODE_NAMES[req.mode]}/{addrs}/{_LEVEL_NAMES[req.level]}"
    if req.reqid:
        text += f"{'#' if req.reqid > MANUAL_REQID_MAX else ':'}{req.reqid}"
    return text


# ---------------------------------------------------------------------------------------------
# -D


def format_sa(msg: Message, now: int, with_ports: bool = False) -> str:
    """One SAD entry as ``setkey -D`` (``-p``: with ports) prints it."""
    sa: SA | None = msg.sa
    sa2: SA2 | None = msg.sa2
    src, dst = msg.src, msg.dst
    natt_type = msg.get(ExtType.X_NAT_T_TYPE)
    use_natt = isinstance(natt_type, NatTType) and natt_type.nat_t_type != 0
    sport = msg.get(ExtType.X_NAT_T_SPORT)
    dport = msg.get(ExtType.X_NAT_T_DPORT)
    out: list[str] = []
    if src is None:
        return "no ADDRESS_SRC extension.\n"
    out.append(f"{_addr_text(src)}[{src.port}]" if with_ports else _addr_text(src))
    if use_natt and isinstance(sport, NatTPort):
        out.append(f"[{sport.port}]")
    out.append(" ")
    if dst is None:
        return "".join(out) + " no ADDRESS_DST extension.\n"
    out.append(f"{_addr_text(dst)}[{dst.port}]" if with_ports else _addr_text(dst))
    if use_natt and isinstance(dport, NatTPort):
        out.append(f"[{dport.port}]")
    out.append(" ")
    if sa is None:
        return "".join(out) + "no SA extension.\n"
    if sa2 is None:
        return "".join(out) + "no SA2 extension.\n"
    out.append("\n\t")
    if use_natt and msg.satype == SaType.ESP:
        out.append("esp-udp ")
    else:
        if use_natt:
            out.append("natt+")
        out.append(satype_dump_name(msg.satype) + " ")
    out.append(f"mode={_table_name(MODE_DUMP_NAMES, sa2.mode)} ")
    out.append(f"spi={sa.spi}(0x{sa.spi:08x}) reqid={sa2.reqid}(0x{sa2.reqid:08x})\n")
    oa = msg.get(ExtType.X_NAT_T_OA)
    if use_natt and isinstance(oa, Address):
        out.append(f"\tNAT OA={_addr_text(oa)}\n")
    enc = msg.key(ExtType.KEY_ENCRYPT)
    auth = msg.key(ExtType.KEY_AUTH)
    if msg.satype == SaType.IPCOMP:
        # ipsec-tools' pfkey_sa_dump prints no newline after the C: line (libipsec's pfkey_dump.c
        # draws one); the code wins, so "seq=" follows on the same line exactly as setkey shows.
        out.append("\tC: " + COMPRESSION_DUMP_NAMES.get(sa.encrypt, str(sa.encrypt)) + " ")
    elif msg.satype == SaType.ESP and enc is not None:
        name = ENCRYPTION_DUMP_NAMES.get(sa.encrypt, str(sa.encrypt))
        out.append(f"\tE: {name} {hexdump(_key_bytes(enc))}\n")
    if auth is not None:
        name = AUTHENTICATION_DUMP_NAMES.get(sa.auth, str(sa.auth))
        out.append(f"\tA: {name} {hexdump(_key_bytes(auth))}\n")
    out.append(f"\tseq=0x{sa2.sequence:08x} replay={sa.replay} flags=0x{sa.flags:08x} ")
    out.append(f"state={_table_name(STATE_DUMP_NAMES, sa.state)} \n")
    cur = msg.lifetime(ExtType.LIFETIME_CURRENT)
    hard = msg.lifetime(ExtType.LIFETIME_HARD)
    soft = msg.lifetime(ExtType.LIFETIME_SOFT)
    if cur is not None:
        diff = 0 if cur.addtime == 0 else max(now - cur.addtime, 0)
        out.append(f"\tcreated: {format_time(cur.addtime)}\tcurrent: {format_time(now)}\n")
        out.append(
            f"\tdiff: {diff}(s)\thard: {_lt(hard, 'addtime')}(s)\tsoft: {_lt(soft, 'addtime')}(s)\n"
        )
        out.append(
            f"\tlast: {format_time(cur.usetime)}\thard: {_lt(hard, 'usetime')}(s)"
            f"\tsoft: {_lt(soft, 'usetime')}(s)\n"
        )
        out.append(
            f"\tcurrent: {cur.bytes}(bytes)\thard: {_lt(hard, 'bytes')}(bytes)"
            f"\tsoft: {_lt(soft, 'bytes')}(bytes)\n"
        )
        out.append(
            f"\tallocated: {cur.allocations}\thard: {_lt(hard, 'allocations')}"
            f"\tsoft: {_lt(soft, 'allocations')}\n"
        )
    ctx = msg.get(ExtType.X_SEC_CTX)
    if isinstance(ctx, SecCtx):
        out.append(_format_ctx(ctx))
    out.append(f"\tsadb_seq={msg.seq} pid={msg.pid} refcnt={msg.reserved}\n")
    return "".join(out)


def _key_bytes(key: Key) -> bytes:
    return key.key[: (key.bits or 0) // 8]


def _lt(lifetime: Lifetime | None, attr: str) -> int:
    return 0 if lifetime is None else int(getattr(lifetime, attr))


def _format_ctx(ctx: SecCtx) -> str:
    text = ctx.ctx.split(b"\0", 1)[0].decode("latin-1")
    return (
        f"\tsecurity context doi: {ctx.doi}\n"
        f"\tsecurity context algorithm: {ctx.alg}\n"
        f"\tsecurity context length: {len(ctx.ctx)}\n"
        f"\tsecurity context: {text}\n"
    )


def is_dead(msg: Message) -> bool:
    """setkey -D hides dead SAs unless ``-a`` is given."""
    return msg.sa is not None and msg.sa.state == SaState.DEAD


# ---------------------------------------------------------------------------------------------
# -DP


def _prefport(a: Address, ulp: int) -> str:
    pref = "" if a.prefixlen == a.addr.max_prefixlen else f"/{a.prefixlen}"
    if ulp in (IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH, IPPROTO_GRE):
        port = ""
    else:
        port = "[any]" if a.port == 0 else f"[{a.port}]"
    return pref + port


def _upperspec(ulp: int, p1: int, p2: int) -> str:
    text = protocol_name(ulp)
    if p1 == 0 and p2 == 0:
        return text
    if ulp in (IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH):
        return f"{text} {p1},{p2}"
    if ulp == IPPROTO_GRE:
        return f"{text} {(p1 << 16) + p2}"
    return text


def format_policy(msg: Message, with_ports: bool = False) -> str:
    """One SPD entry as ``setkey -DP`` prints it (Linux build)."""
    policy: Policy | None = msg.policy
    src, dst = msg.src, msg.dst
    out: list[str] = []
    if policy is not None and policy.id % 8 >= 3:
        out.append("(per-socket policy) ")
    elif src is not None and dst is not None:
        ulp = src.proto
        out.append(f"{_addr_text(src)}{_prefport(src, ulp)} ")
        out.append(f"{_addr_text(dst)}{_prefport(dst, ulp)} ")
        if src.proto != dst.proto:
            return "".join(out) + "upper layer protocol mismatched.\n"
        out.append(_upperspec(ulp, src.port, dst.port))
    else:
        out.append("(no selector, probably per-socket policy) ")
    if policy is None:
        return "".join(out) + "no X_POLICY extension.\n"
    try:
        out.append("\n\t" + dump_policy(policy, "\n\t", with_ports) + "\n")
    except PolicyDumpError as e:
        out.append(f"\n\tPolicy:[{e.message}]\n")
    cur = msg.lifetime(ExtType.LIFETIME_CURRENT)
    hard = msg.lifetime(ExtType.LIFETIME_HARD)
    if cur is not None:
        out.append(f"\tcreated: {format_time(cur.addtime)}  lastused: {format_time(cur.usetime)}\n")
    if hard is not None:
        out.append(f"\tlifetime: {hard.addtime}(s) validtime: {hard.usetime}(s)\n")
    ctx = msg.get(ExtType.X_SEC_CTX)
    if isinstance(ctx, SecCtx):
        out.append(_format_ctx(ctx))
    out.append(f"\tspid={policy.id} seq={msg.seq} pid={msg.pid}\n")
    out.append(f"\trefcnt={msg.reserved}\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# -l (shortdump)

SHORTDUMP_HEADER = f"{'time':<4} {'p':<3} {'s':<1} {'spi':<8} {'ltime':<7} src -> dst\n"
_SHORT_SATYPE: dict[int, str] = {SaType.AH: "ah", SaType.ESP: "esp"}
_SHORT_STATE = ("L", "M", "D", "d")
_SHORT_PROTO = {
    0: "ip", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ip4", 6: "tcp", 8: "egp", 17: "udp",
    22: "idp", 29: "tp", 41: "ip6", 43: "rt6", 44: "frag6", 46: "rsvp", 47: "gre", 50: "esp",
    51: "ah", 58: "icmp6", 59: "none", 60: "dst6",
}  # fmt: skip


def format_short(msg: Message, now: int) -> str:
    """One line of ``setkey -D -l``."""
    out = [f"{(now % 3600) // 60:02d}{now % 60:02d}"]
    out.append(f" {_SHORT_SATYPE.get(msg.satype, f'#{msg.satype}'):<3}")
    sa = msg.sa
    if sa is not None:
        state = _SHORT_STATE[sa.state] if sa.state < 4 else f"#{sa.state}"
        out.append(f" {state:<1} {sa.spi:08x}")
    else:
        out.append(f"{'?':<1} {'?':<8}")
    soft = msg.lifetime(ExtType.LIFETIME_SOFT)
    hard = msg.lifetime(ExtType.LIFETIME_HARD)
    cur = msg.lifetime(ExtType.LIFETIME_CURRENT)
    if soft and hard and cur:
        age = 0 if cur.addtime == 0 else now - cur.addtime
        out.append(" big/" if age >= 1000 else f" {age:3d}/")
        out.append("big" if hard.addtime >= 1000 else f"{hard.addtime:<3d}")
    else:
        out.append(" ???/???")
    out.append(" ")
    for i, a in enumerate((msg.src, msg.dst)):
        if i:
            out.append(" -> ")
        if a is None:
            out.append("?")
            continue
        if a.proto:
            out.append(_SHORT_PROTO.get(a.proto, f"#{a.proto}") + " ")
        text = _addr_text(a)
        out.append(f"{text}[{a.port}]" if a.port else text)
    return "".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# -v / -x (kdebug_sadb)


def _kdebug_sockaddr(addr: IPAddress, port: int, flowinfo: int = 0, scope_id: int = 0) -> str:
    from ipaddress import IPv4Address

    if isinstance(addr, IPv4Address):
        head = f"sockaddr{{ len=16 family=2 port={port}\n"
        return head + hexdump(addr.packed) + "  }\n"
    head = f"sockaddr{{ len=28 family=10 port={port}\n"
    head += f"  flowinfo=0x{flowinfo:08x}, scope_id=0x{scope_id:08x}\n"
    return head + hexdump(addr.packed) + "  }\n"


def _kdebug_ext(ext: Extension) -> str:
    if isinstance(ext, SA):
        return (
            f"sadb_sa{{ spi={ext.spi} replay={ext.replay} state={ext.state}\n"
            f"  auth={ext.auth} encrypt={ext.encrypt} flags=0x{ext.flags:08x} }}\n"
        )
    if isinstance(ext, Lifetime):
        return (
            f"sadb_lifetime{{ alloc={ext.allocations}, bytes={ext.bytes & 0xFFFFFFFF}\n"
            f"  addtime={ext.addtime & 0xFFFFFFFF}, usetime={ext.usetime & 0xFFFFFFFF} }}\n"
        )
    if isinstance(ext, Address):
        return (
            f"sadb_address{{ proto={ext.proto} prefixlen={ext.prefixlen} reserved=0x0000 }}\n"
            + _kdebug_sockaddr(ext.addr, ext.port, ext.flowinfo, ext.scope_id)
        )
    if isinstance(ext, Key):
        return f"sadb_key{{ bits={ext.bits} reserved=0\n  key={hexdump(_key_bytes(ext))} }}\n"
    if isinstance(ext, Identity):
        text = f"sadb_ident_{'src' if ext.type == ExtType.IDENTITY_SRC else 'dst'}{{"
        text += f" type={ext.id_type} id={ext.id}"
        if ext.data:
            shown = "".join(
                chr(b) if 32 <= b < 127 else f"\\{b:03o}" for b in ext.data.split(b"\0")[0]
            )
            text += f'\n  str="{shown}"'
        return text + " }\n"
    if isinstance(ext, Supported):
        lines = ["sadb_sup{\n"]
        alg: Alg
        for alg in ext.algs:
            lines.append(
                f"  {{ id={alg.id} ivlen={alg.ivlen} min={alg.minbits} max={alg.maxbits} }}\n"
            )
        return "".join(lines) + "}\n"
    if isinstance(ext, Proposal):
        lines = [f"sadb_prop{{ replay={ext.replay}\n"]
        for c in ext.combs:
            lines.append(
                f"sadb_comb{{ auth={c.auth} encrypt={c.encrypt} flags=0x{c.flags:04x} "
                f"reserved=0x00000000\n"
                f"  auth_minbits={c.auth_minbits} auth_maxbits={c.auth_maxbits} "
                f"encrypt_minbits={c.encrypt_minbits} encrypt_maxbits={c.encrypt_maxbits}\n"
                f"  soft_alloc={c.soft_allocations} hard_alloc={c.hard_allocations} "
                f"soft_bytes={c.soft_bytes} hard_bytes={c.hard_bytes}\n"
                f"  soft_alloc={c.soft_addtime} hard_alloc={c.hard_addtime} "
                f"soft_bytes={c.soft_usetime} hard_bytes={c.hard_usetime} }}\n"
            )
        return "".join(lines) + "}\n"
    if isinstance(ext, Policy):
        text = (
            f"sadb_x_policy{{ type={ext.policy_type} dir={ext.dir} id={ext.id:x} "
            f"priority={ext.priority} }}\n"
        )
        req: IpsecRequest
        for req in ext.requests:
            length = len(req.encode(LINUX))  # what the kernel's sadb_x_ipsecrequest_len says
            text += (
                f" {{ len={length} proto={req.proto} mode={req.mode} level={req.level} "
                f"reqid={req.reqid}\n"
            )
            if req.src is not None and req.dst is not None:
                text += _kdebug_sockaddr(req.src, req.src_port)
                text += _kdebug_sockaddr(req.dst, req.dst_port)
            text += " }\n"
        return text
    if isinstance(ext, SA2):
        return (
            f"sadb_x_sa2{{ mode={ext.mode} reqid={ext.reqid}\n"
            f"  reserved1=0 reserved2=0 sequence={ext.sequence} }}\n"
        )
    if isinstance(ext, NatTType):
        return f"sadb_x_nat_t_type{{ type={ext.nat_t_type} }}\n"
    if isinstance(ext, NatTPort):
        return f"sadb_x_nat_t_port{{ port={ext.port} }}\n"
    return ""


def format_kdebug(msg: Message) -> str:
    """``kdebug_sadb``: the field-by-field debugging dump of ``-v`` and ``-x``."""
    from pyracoon.kernel.pfkey import encode_extension

    ext_bytes = [encode_extension(ext, LINUX) for ext in msg]
    total = (16 + sum(len(b) for b in ext_bytes)) // 8
    out = [
        f"sadb_msg{{ version={msg.version} type={msg.type} errno={msg.errno} satype={msg.satype}\n",
        f"  len={total} reserved={msg.reserved} seq={msg.seq} pid={msg.pid}\n",
    ]
    known = {
        ExtType.SENSITIVITY,
        ExtType.SPIRANGE,
        ExtType.X_KMPRIVATE,
    }
    for ext, raw in zip(msg, ext_bytes, strict=True):
        out.append(f"sadb_ext{{ len={len(raw) // 8} type={int(ext.type)} }}\n")
        body = _kdebug_ext(ext)
        if not body and int(ext.type) not in known:
            out.append(f"kdebug_sadb: invalid ext_type {int(ext.type)} was passed.\n")
            break
        out.append(body)
    return "".join(out)


# ---------------------------------------------------------------------- the SAD, for the daemon


def _sad(sock: KernelSocket, protos: Iterable[ops.Proto]) -> list[Message]:
    return [m for proto in protos for m in sock.dump(pfkey_codec.sadb_satype(proto))]


def show_sad(sock: KernelSocket, protos: Iterable[ops.Proto]) -> str:
    """The SAs of ``protos`` as ``setkey -D`` prints them (``racoonctl show-sa esp``), with
    their ages counted on the kernel's clock; "No SAD entries." when there are none."""
    messages = _sad(sock, protos)
    if not messages:
        return "No SAD entries.\n"
    now = int(sock.now())
    return "".join(format_sa(m, now) for m in messages)


def sad_entries(sock: KernelSocket, protos: Iterable[ops.Proto]) -> list[ops.KernelSa]:
    """The SAs of ``protos`` in the kernel vocabulary (``racoonctl delete-sa esp``)."""
    out = []
    for m in _sad(sock, protos):
        event = pfkey_codec.event_of(m, sock.pid)
        if isinstance(event, ops.SaEvent) and event.sa is not None:
            out.append(event.sa)
    return out


# ---------------------------------------------------------------------- racoonctl show-sa esp


class SadReplyError(ValueError):
    """A malformed ``show-sa esp|ah|ipsec`` reply: ``field`` at byte ``offset``."""

    def __init__(self, field: str, offset: int, message: str) -> None:
        self.field = field
        self.offset = offset
        self.message = message
        super().__init__(f"{field} at offset {offset}: {message}")



def encode_sad_reply(messages: list[Message], satype: int = 0) -> bytes:
    """The ``show-sa esp|ah|ipsec`` body: the SAs as ``SADB_DUMP`` replies, ``seq`` counting
    down to 0 on the last (racoonctl stops there), or the kernel's ENOENT answer when there is
    none. Dumps of several SA types are joined into one count, as one dump of all types."""
    if not messages:
        return encode(Message(MsgType.DUMP, satype, errno.ENOENT, 0, 0))
    last = len(messages) - 1
    return b"".join(
        encode(Message(MsgType.DUMP, m.satype, 0, last - i, m.pid, m.reserved, m.version,
                             m.extensions))
        for i, m in enumerate(messages))


def decode_sad_reply(body: bytes) -> tuple[int, list[Message]]:
    """``(errno, SAs)`` of a ``show-sa esp|ah|ipsec`` body: errno ENOENT with no SAs for an
    empty SAD, another errno for a kernel failure, 0 with the SAs otherwise."""
    if len(body) < HEADER.size:
        raise SadReplyError("sadb_msg", 0,
                               f"a reply of {len(body)} bytes, a sadb_msg has {HEADER.size}")
    first = HEADER.unpack_from(body)
    if first[0] != PF_KEY_V2 or first[1] != MsgType.DUMP:
        raise SadReplyError(
            "sadb_msg", 0, f"not a PF_KEY dump (version {first[0]}, type {first[1]}): is this "
            "racoon's admin socket, or a pyracoon older than its binary replies?")
    if first[2]:
        return first[2], []
    out = []
    at = 0
    while True:
        if len(body) - at < HEADER.size:
            raise SadReplyError("sadb_msg", at, "the dump ends before its last SA (seq 0)")
        length = HEADER.unpack_from(body, at)[4] * 8
        if length < HEADER.size or at + length > len(body):
            raise SadReplyError("sadb_msg_len", at + 4,
                                   f"{length} bytes, {len(body) - at} left in the reply")
        try:
            m = decode(body[at:at + length])
        except PfkeyDecodeError as e:
            raise SadReplyError("sadb_msg", at, str(e)) from None
        out.append(m)
        at += length
        if m.seq == 0:
            return 0, out


def show_sad_reply(sock: KernelSocket, protos: Iterable[ops.Proto]) -> bytes:
    """What racoon answers ``racoonctl show-sa esp|ah|ipsec``: this socket's dump of ``protos``
    as one count of SADB_DUMP replies (racoon's admin.c ADMIN_SHOW_SA)."""
    protos = tuple(protos)
    satype = pfkey_codec.sadb_satype(protos[0]) if len(protos) == 1 else 0
    return encode_sad_reply(_sad(sock, protos), satype)


def format_sad_reply(body: bytes, now: int) -> str:
    """A ``show-sa esp|ah|ipsec`` reply as racoonctl prints it: ``setkey -D`` for each SA, or
    ``No SAD entries.`` / ``<strerror>.`` for the kernel's errno (``SadReplyError`` when the
    body is not such a reply)."""
    code, sas = decode_sad_reply(body)
    if code == errno.ENOENT:
        return "No SAD entries.\n"
    if code:
        return f"{os.strerror(code)}.\n"
    return "".join(format_sa(m, now) for m in sas)
