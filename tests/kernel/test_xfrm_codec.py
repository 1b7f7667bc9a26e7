"""The XFRM netlink codec: layouts against ``linux/xfrm.h``, bytes, and the PF_KEY translation.

The layouts are checked against the C header itself: a small C program prints ``sizeof`` and
``offsetof`` of every field we pack, compiled against this machine's ``linux/xfrm.h``, and each
must equal the offset of the same item in our ``struct`` format. Byte tests then pin what lands
at those offsets. Whether the real kernel agrees is the lab's part (tests/lab/test_lab_xfrm.py).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from pyracoon.kernel import netlink as nl
from pyracoon.kernel import xfrm, xfrm_pfkey, xfrm_structs
from pyracoon.kernel.base import KernelUnavailable, open_kernel
from pyracoon.kernel.pfkey import (
    SA,
    SA2,
    Address,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    Policy,
)
from pyracoon.kernel.sadb import ExtType, Level, Mode, MsgType, SaState, SaType

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
HEADER = Path("/usr/include/linux/xfrm.h")

# C field designators, in the order their items appear in our struct format (pads skipped).
FIELDS: dict[str, list[str]] = {
    "xfrm_selector": [
        "daddr",
        "saddr",
        "dport",
        "dport_mask",
        "sport",
        "sport_mask",
        "family",
        "prefixlen_d",
        "prefixlen_s",
        "proto",
        "ifindex",
        "user",
    ],
    "xfrm_lifetime_cfg": [
        "soft_byte_limit",
        "hard_byte_limit",
        "soft_packet_limit",
        "hard_packet_limit",
        "soft_add_expires_seconds",
        "hard_add_expires_seconds",
        "soft_use_expires_seconds",
        "hard_use_expires_seconds",
    ],
    "xfrm_lifetime_cur": ["bytes", "packets", "add_time", "use_time"],
    "xfrm_usersa_info": [
        "sel",
        "id.daddr",
        "id.spi",
        "id.proto",
        "saddr",
        "lft",
        "curlft",
        "stats",
        "seq",
        "reqid",
        "family",
        "mode",
        "replay_window",
        "flags",
    ],
    "xfrm_usersa_id": ["daddr", "spi", "family", "proto"],
    "xfrm_userspi_info": ["info", "min", "max"],
    "xfrm_userpolicy_info": [
        "sel",
        "lft",
        "curlft",
        "priority",
        "index",
        "dir",
        "action",
        "flags",
        "share",
    ],
    "xfrm_userpolicy_id": ["sel", "index", "dir"],
    "xfrm_user_tmpl": [
        "id.daddr",
        "id.spi",
        "id.proto",
        "family",
        "saddr",
        "reqid",
        "mode",
        "share",
        "optional",
        "aalgos",
        "ealgos",
        "calgos",
    ],
    "xfrm_user_acquire": [
        "id.daddr",
        "id.spi",
        "id.proto",
        "saddr",
        "sel",
        "policy",
        "aalgos",
        "ealgos",
        "calgos",
        "seq",
    ],
    "xfrm_user_expire": ["state", "hard"],
    "xfrm_user_polexpire": ["pol", "hard"],
    "xfrm_usersa_flush": ["proto"],
    "xfrm_algo": ["alg_name", "alg_key_len"],
    "xfrm_algo_auth": ["alg_name", "alg_key_len", "alg_trunc_len"],
    "xfrm_algo_aead": ["alg_name", "alg_key_len", "alg_icv_len"],
    "xfrm_encap_tmpl": ["encap_type", "encap_sport", "encap_dport", "encap_oa"],
    "xfrm_userpolicy_type": ["type", "reserved1", "reserved2"],
}


def item_offsets(st: struct.Struct) -> list[int]:
    """The offset of each item of a ``=``-format struct (``16s`` is one item, ``3x`` none)."""
    out, pos = [], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", st.format.lstrip("=")):
        n = int(count) if count else 1
        size = struct.calcsize("=" + code)
        if code == "x":
            pos += n
        elif code == "s":
            out.append(pos)
            pos += n
        else:
            for _ in range(n):
                out.append(pos)
                pos += size
    return out


def test_every_packed_struct_has_its_field_list():
    assert set(FIELDS) == set(xfrm_structs.STRUCTS)
    for name, st in xfrm_structs.STRUCTS.items():
        assert len(item_offsets(st)) == len(FIELDS[name]), name


def _probe_header(tmp_path: Path) -> dict[str, int]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not HEADER.exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs gcc and libc6-dev (linux/xfrm.h): the layout check must run")
        pytest.skip("no C compiler or no linux/xfrm.h here")
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <linux/xfrm.h>",
        "int main(void){",
    ]
    for name, fields in FIELDS.items():
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        for f in fields:
            lines.append(f'printf("{name}.{f} %zu\\n", offsetof(struct {name}, {f}));')
    lines.append("return 0;}")
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "probe"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def test_struct_layouts_match_linux_xfrm_h(tmp_path: Path):
    c = _probe_header(tmp_path)
    for name, st in xfrm_structs.STRUCTS.items():
        # the trailing padding a C compiler adds is part of sizeof; ours is explicit
        assert st.size == c[name], f"sizeof(struct {name}) is {c[name]}, ours {st.size}"
        for f, off in zip(FIELDS[name], item_offsets(st), strict=True):
            assert off == c[f"{name}.{f}"], f"{name}.{f} at {c[f'{name}.{f}']}, ours {off}"


def test_the_sizes_the_header_gives_on_64_bit_linux():
    sizes = {name: st.size for name, st in xfrm_structs.STRUCTS.items()}
    assert sizes["xfrm_selector"] == 56
    assert sizes["xfrm_usersa_info"] == 224
    assert sizes["xfrm_userspi_info"] == 232
    assert sizes["xfrm_userpolicy_info"] == 168
    assert sizes["xfrm_user_tmpl"] == 64
    assert sizes["xfrm_user_acquire"] == 280
    assert sizes["xfrm_user_expire"] == 232
    assert sizes["xfrm_usersa_id"] == 24


# ---------------------------------------------------------------------------------------------
# bytes


def memo_add(spi: int = 0x111, mtype: int = MsgType.ADD) -> Message:
    m = Message(mtype, SaType.ESP, seq=7, pid=99)
    m.add(SA(spi, 4, 0, 3, 3))
    m.add(SA2(Mode.TRANSPORT, 0, 12))
    m.add(Address(ExtType.ADDRESS_SRC, V4("10.1.0.1")))
    m.add(Address(ExtType.ADDRESS_DST, V4("10.1.0.2")))
    m.add(Lifetime(ExtType.LIFETIME_HARD, 0, 0, 180, 0))
    m.add(Lifetime(ExtType.LIFETIME_SOFT, 0, 0, 144, 0))
    m.add(Key(ExtType.KEY_ENCRYPT, b"This is a Secret Key !!!"))
    m.add(Key(ExtType.KEY_AUTH, b"This is a Secret Key"))
    return m


def test_an_esp_sa_lands_at_the_header_offsets():
    info, attrs = xfrm_pfkey.sa_request(memo_add())
    b = info.pack()
    assert len(b) == 224
    assert struct.unpack_from("=H", b, 40)[0] == socket.AF_INET  # sel.family, selector open
    assert b[0:32] == bytes(32)
    assert b[56:60] == V4("10.1.0.2").packed and b[60:72] == bytes(12)  # id.daddr
    assert b[72:76] == b"\x00\x00\x01\x11"  # id.spi, network order
    assert b[76] == 50  # id.proto ESP
    assert b[80:84] == V4("10.1.0.1").packed  # saddr
    soft_b, hard_b, soft_p, hard_p, soft_add, hard_add, soft_use, hard_use = struct.unpack_from(
        "=8Q", b, 96
    )
    assert (soft_b, hard_b, soft_p, hard_p) == (xfrm_structs.XFRM_INF,) * 4  # 0 = no limit (af_key)
    assert (soft_add, hard_add, soft_use, hard_use) == (144, 180, 0, 0)
    assert struct.unpack_from("=IIHBB", b, 204) == (7, 12, socket.AF_INET, 0, 4)
    kinds = [t for t, _ in attrs]
    assert kinds == [xfrm_structs.XFRMA_ALG_AUTH_TRUNC, xfrm_structs.XFRMA_ALG_CRYPT]
    auth = dict(attrs)[xfrm_structs.XFRMA_ALG_AUTH_TRUNC]
    assert auth[:10] == b"hmac(sha1)" and auth[10:64] == bytes(54)
    assert struct.unpack_from("=II", auth, 64) == (160, 96)  # key bits, RFC 2404 truncation
    assert auth[72:] == b"This is a Secret Key"
    enc = dict(attrs)[xfrm_structs.XFRMA_ALG_CRYPT]
    assert enc[:13] == b"cbc(des3_ede)" and struct.unpack_from("=I", enc, 64)[0] == 192


def test_sha2_hmacs_carry_rfc4868_truncation_and_gcm_goes_as_aead():
    m = memo_add()
    m.add(SA(0x200, 4, 0, 5, 20))  # hmac-sha256, aes-gcm-16
    m.add(Key(ExtType.KEY_ENCRYPT, bytes(20)))
    m.add(Key(ExtType.KEY_AUTH, bytes(32)))
    _, attrs = xfrm_pfkey.sa_request(m)
    a = dict(attrs)
    assert a[xfrm_structs.XFRMA_ALG_AUTH_TRUNC][:12] == b"hmac(sha256)"
    assert struct.unpack_from("=II", a[xfrm_structs.XFRMA_ALG_AUTH_TRUNC], 64) == (256, 128)
    aead = a[xfrm_structs.XFRMA_ALG_AEAD]
    assert aead[:17] == b"rfc4106(gcm(aes))"
    assert struct.unpack_from("=II", aead, 64) == (160, 128)  # key with its salt, 16-byte ICV


def test_an_sa_survives_the_trip_through_xfrm_and_back():
    info, attrs = xfrm_pfkey.sa_request(memo_add())
    raw = info.pack() + nl.attrs(attrs)
    back = xfrm_pfkey.state_message(
        MsgType.GET, xfrm_structs.UsersaInfo.unpack(raw), nl.parse_attrs(raw, 224), keys=True
    )
    assert back is not None and back.satype == SaType.ESP
    assert back.sa is not None
    assert (back.sa.spi, back.sa.auth, back.sa.encrypt, back.sa.replay) == (0x111, 3, 3, 4)
    assert back.sa.state == SaState.MATURE
    assert back.src.addr == V4("10.1.0.1") and back.dst.addr == V4("10.1.0.2")
    assert back.sa2.mode == Mode.TRANSPORT and back.sa2.reqid == 12
    assert back.key(ExtType.KEY_ENCRYPT).key == b"This is a Secret Key !!!"
    assert back.key(ExtType.KEY_AUTH).key == b"This is a Secret Key"
    hard = back.lifetime(ExtType.LIFETIME_HARD)
    assert (hard.addtime, hard.bytes, hard.allocations) == (180, 0, 0)
    assert back.lifetime(ExtType.LIFETIME_SOFT).addtime == 144


def test_unknown_algorithms_and_missing_extensions_are_refused_with_einval():
    m = memo_add()
    m.add(SA(0x111, 4, 0, 249, 3))  # keyed-md5: KAME only, XFRM has no name for it
    with pytest.raises(xfrm_structs.Refusal) as e:
        xfrm_pfkey.sa_request(m)
    assert e.value.errno == errno.EINVAL
    m = memo_add()
    del m.extensions[ExtType.ADDRESS_DST]
    with pytest.raises(xfrm_structs.Refusal):
        xfrm_pfkey.sa_request(m)


def spd(direction: int, reqs: list[IpsecRequest], ptype: int = 2, proto: int = 255) -> Message:
    m = Message(MsgType.X_SPDADD, 0, seq=3, pid=99)
    m.add(Address(ExtType.ADDRESS_SRC, ipaddress.ip_address("fd00::1"), 0, 64, proto))
    m.add(Address(ExtType.ADDRESS_DST, ipaddress.ip_address("fd00::2"), 80, 128, proto))
    m.add(Policy(ptype, direction, 0, 0x80000000, reqs))
    return m


def test_policy_templates_follow_af_key_levels_and_reqids():
    reqs = [
        IpsecRequest(50, Mode.TUNNEL, Level.UNIQUE, 5, V6("fd00::1"), V6("fd00::2")),
        IpsecRequest(51, Mode.TRANSPORT, Level.REQUIRE, 9),
        IpsecRequest(108, Mode.TRANSPORT, Level.USE, 0),
        IpsecRequest(50, Mode.TRANSPORT, Level.UNIQUE, 0),
    ]
    info, attrs = xfrm_pfkey.policy_request(spd(2, reqs, proto=6), new_reqid=lambda: 0x4000)
    b = info.pack()
    assert len(b) == 168
    assert b[0:16] == V6("fd00::2").packed and b[16:32] == V6("fd00::1").packed
    assert struct.unpack_from("!HH", b, 32) == (80, 0xFFFF)  # dport, dport_mask
    assert struct.unpack_from("=HBBB", b, 40) == (socket.AF_INET6, 128, 64, 6)
    assert struct.unpack_from("=IIBB", b, 152) == (0x80000000, 0, xfrm_structs.XFRM_POLICY_OUT, 0)
    tmpls = xfrm_structs.UserTmpl.unpack_all(dict(attrs)[xfrm_structs.XFRMA_TMPL])
    assert [(t.proto, t.mode, t.reqid, t.optional) for t in tmpls] == [
        (50, xfrm_structs.XFRM_MODE_TUNNEL, 5, 0),
        (51, xfrm_structs.XFRM_MODE_TRANSPORT, 0, 0),  # require carries no reqid, as af_key
        (108, xfrm_structs.XFRM_MODE_TRANSPORT, 0, 1),  # use = optional
        (50, xfrm_structs.XFRM_MODE_TRANSPORT, 0x4000, 0),  # unique without one is given one
    ]
    assert tmpls[0].saddr == V6("fd00::1") and tmpls[0].daddr == V6("fd00::2")
    assert all(t.aalgos == t.ealgos == t.calgos == 0xFFFFFFFF for t in tmpls)


def test_a_policy_comes_back_as_the_pfkey_message_setkey_printed_it_from():
    reqs = [
        IpsecRequest(50, Mode.TUNNEL, Level.UNIQUE, 5, V6("fd00::1"), V6("fd00::2")),
        IpsecRequest(51, Mode.TRANSPORT, Level.USE, 0),
    ]
    info, attrs = xfrm_pfkey.policy_request(spd(1, reqs), new_reqid=lambda: 1)
    info.index = (8 << 3) | xfrm_structs.XFRM_POLICY_IN  # the kernel's index: direction, low bits
    raw = info.pack() + nl.attrs(attrs)
    back = xfrm_pfkey.policy_message(
        MsgType.X_SPDDUMP, xfrm_structs.UserpolicyInfo.unpack(raw), nl.parse_attrs(raw, 168)
    )
    assert back is not None
    pol = back.policy
    assert (pol.policy_type, pol.dir, pol.id, pol.priority) == (2, 1, 0x40, 0x80000000)
    assert pol.requests == [
        IpsecRequest(50, Mode.TUNNEL, Level.UNIQUE, 5, V6("fd00::1"), V6("fd00::2")),
        IpsecRequest(51, Mode.TRANSPORT, Level.USE, 0),
    ]
    assert (back.src.addr, back.src.prefixlen, back.src.proto) == (V6("fd00::1"), 64, 255)
    assert (back.dst.port, back.dst.prefixlen) == (80, 128)


def test_discard_and_none_policies():
    info, attrs = xfrm_pfkey.policy_request(spd(2, [], ptype=0), new_reqid=lambda: 1)
    assert info.action == xfrm_structs.XFRM_POLICY_BLOCK and attrs == []
    info, attrs = xfrm_pfkey.policy_request(spd(2, [], ptype=1), new_reqid=lambda: 1)
    assert info.action == xfrm_structs.XFRM_POLICY_ALLOW and attrs == []
    back = xfrm_pfkey.policy_message(MsgType.X_SPDGET, info, nl.Attributes())
    assert back.policy.policy_type == 1
    with pytest.raises(xfrm_structs.Refusal):
        xfrm_pfkey.policy_request(spd(2, [], ptype=4), new_reqid=lambda: 1)  # bypass: af_key EINVAL


# ---------------------------------------------------------------------------------------------
# events


def test_an_acquire_names_the_policy_and_the_kernels_sequence_number():
    pol = xfrm_structs.UserpolicyInfo(
        sel=xfrm_structs.Selector(socket.AF_INET, V4("10.1.0.1"), V4("10.1.0.2"), 32, 32),
        index=0x19,
        dir=xfrm_structs.XFRM_POLICY_OUT,
    )
    body = xfrm_structs.USER_ACQUIRE.pack(
        xfrm_structs.pack_addr(V4("10.1.0.2")),
        bytes(4),
        50,
        xfrm_structs.pack_addr(V4("10.1.0.1")),
        pol.sel.pack(),
        pol.pack(),
        0xFFFFFFFF,
        0xFFFFFFFF,
        0xFFFFFFFF,
        4242,
    )
    tmpl = xfrm_structs.UserTmpl(50, socket.AF_INET)
    m = nl.NlMsg(
        xfrm_structs.XFRM_MSG_ACQUIRE, 0, 0, 0, body + nl.attr(xfrm_structs.XFRMA_TMPL, tmpl.pack())
    )
    ev = xfrm_pfkey.event_message(m)
    assert ev is not None
    assert (ev.type, ev.satype, ev.seq, ev.pid) == (MsgType.ACQUIRE, SaType.ESP, 4242, 0)
    assert ev.policy.id == 0x19 and ev.policy.dir == 2
    assert ev.src.addr == V4("10.1.0.1") and ev.dst.addr == V4("10.1.0.2")
    assert ExtType.PROPOSAL in ev


def test_soft_and_hard_expire_carry_the_lifetime_the_engine_looks_for():
    info, _ = xfrm_pfkey.sa_request(memo_add())
    for hard, present, absent in (
        (0, ExtType.LIFETIME_SOFT, ExtType.LIFETIME_HARD),
        (1, ExtType.LIFETIME_HARD, ExtType.LIFETIME_SOFT),
    ):
        m = nl.NlMsg(
            xfrm_structs.XFRM_MSG_EXPIRE, 0, 0, 0, xfrm_structs.USER_EXPIRE.pack(info.pack(), hard)
        )
        ev = xfrm_pfkey.event_message(m)
        assert ev.type == MsgType.EXPIRE and ev.sa.spi == 0x111
        assert present in ev and absent not in ev and ExtType.LIFETIME_CURRENT in ev
        assert ExtType.KEY_AUTH not in ev


def test_a_deleted_sa_and_a_hard_policy_expiry():
    info, attrs = xfrm_pfkey.sa_request(memo_add())
    body = xfrm_structs.pack_usersa_id(info.daddr, info.spi, 50)
    body += nl.attr(xfrm_structs.XFRMA_SA, info.pack()) + nl.attrs(attrs)
    ev = xfrm_pfkey.event_message(nl.NlMsg(xfrm_structs.XFRM_MSG_DELSA, 0, 5, 77, body))
    assert (ev.type, ev.seq, ev.pid, ev.sa.spi) == (MsgType.DELETE, 5, 77, 0x111)
    assert ev.src.addr == V4("10.1.0.1") and ExtType.KEY_ENCRYPT not in ev
    pinfo, _ = xfrm_pfkey.policy_request(spd(2, []), new_reqid=lambda: 1)
    pinfo.index = 0x21
    for hard, want in ((0, None), (1, MsgType.X_SPDEXPIRE)):
        m = nl.NlMsg(
            xfrm_structs.XFRM_MSG_POLEXPIRE,
            0,
            0,
            0,
            xfrm_structs.USER_POLEXPIRE.pack(pinfo.pack(), hard),
        )
        ev = xfrm_pfkey.event_message(m)
        assert (ev.type if ev else None) == want
    assert ev.policy.id == 0x21


def test_a_truncated_event_is_a_decode_error_not_a_struct_error():
    with pytest.raises(xfrm_structs.XfrmDecodeError):
        xfrm_pfkey.event_message(nl.NlMsg(xfrm_structs.XFRM_MSG_ACQUIRE, 0, 0, 0, bytes(100)))
    with pytest.raises(xfrm_structs.XfrmDecodeError):
        xfrm_pfkey.event_message(nl.NlMsg(xfrm_structs.XFRM_MSG_NEWSA, 0, 0, 0, bytes(223)))


# ---------------------------------------------------------------------------------------------
# netlink framing


def test_netlink_messages_and_attributes_are_padded_to_four_bytes():
    m = nl.NlMsg(0x1C, nl.NLM_F_REQUEST | nl.NLM_F_ACK, 9, 1234, b"\xff")
    raw = m.encode()
    assert raw == struct.pack("=IHHII", 17, 0x1C, 5, 9, 1234) + b"\xff\0\0\0"
    assert list(nl.iter_messages(raw + raw)) == [m, m]
    assert nl.attr(13, b"abcde") == struct.pack("=HH", 9, 13) + b"abcde\0\0\0"
    a = nl.parse_attrs(nl.attr(13, b"abcde") + nl.attr(5 | nl.NLA_F_NESTED, b""))
    assert a.get(13) == b"abcde" and a.get(5) == b""


def test_malformed_netlink_is_a_decode_error():
    raw = nl.NlMsg(16, 0, 1, 1, bytes(8)).encode()
    with pytest.raises(nl.NetlinkDecodeError):
        list(nl.iter_messages(raw[:-1]))
    with pytest.raises(nl.NetlinkDecodeError):
        list(nl.iter_messages(struct.pack("=IHHII", 8, 16, 0, 0, 0)))
    with pytest.raises(nl.NetlinkDecodeError):
        nl.parse_attrs(struct.pack("=HH", 40, 1) + b"x")
    err = nl.NlMsg(nl.NLMSG_ERROR, 0, 1, 1, struct.pack("=i", -errno.EEXIST))
    assert err.error == errno.EEXIST


# ---------------------------------------------------------------------------------------------
# what is missing, in one line


def test_missing_modules_are_named():
    _, attrs = xfrm_pfkey.sa_request(memo_add())
    assert xfrm_structs.missing_module_hint(50, socket.AF_INET, errno.EPROTONOSUPPORT, []) == (
        "the kernel has no ESP for IPv4: modprobe esp4"
    )
    assert xfrm_structs.missing_module_hint(
        51, socket.AF_INET6, errno.EPROTONOSUPPORT, []
    ).endswith("modprobe ah6")
    hint = xfrm_structs.missing_module_hint(50, socket.AF_INET, errno.ENOSYS, attrs)
    assert hint == (
        "the kernel has no crypto for hmac(sha1) + cbc(des3_ede): "
        "modprobe -a hmac sha1 cbc des3_ede"
    )


def test_a_kernel_without_xfrm_user_is_one_sentence(monkeypatch):
    def no_xfrm(*args, **kwargs):
        raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")

    monkeypatch.setattr(nl.socket, "socket", no_xfrm)
    with pytest.raises(KernelUnavailable, match=r"modprobe xfrm_user"):
        open_kernel("xfrm")


def test_register_is_answered_from_the_one_algorithm_table():
    reply = xfrm_pfkey.register_reply(Message(MsgType.REGISTER, SaType.ESP, seq=1, pid=2))
    enc = {a.id: (a.minbits, a.maxbits) for a in reply.get(ExtType.SUPPORTED_ENCRYPT).algs}
    auth = {a.id: (a.minbits, a.maxbits) for a in reply.get(ExtType.SUPPORTED_AUTH).algs}
    assert enc[3] == (192, 192) and enc[12] == (128, 256) and 20 in enc
    assert auth[3] == (160, 160) and auth[5] == (256, 256)
    assert 249 not in auth  # keyed-md5 has no XFRM name


def test_auto_takes_xfrm_on_linux_when_it_opens_and_pfkey_otherwise(monkeypatch):
    from pyracoon.kernel import base

    monkeypatch.setattr(xfrm, "XfrmSocket", lambda: "xfrm")
    monkeypatch.setattr(base, "PfkeySocket", lambda: "pfkey")
    monkeypatch.delenv(base.KERNEL_ENV, raising=False)
    monkeypatch.setattr(base.sys, "platform", "linux")
    monkeypatch.setattr(xfrm, "xfrm_available", lambda: True)
    assert open_kernel("auto") == "xfrm" and open_kernel() == "xfrm"
    monkeypatch.setattr(xfrm, "xfrm_available", lambda: False)
    assert open_kernel("auto") == "pfkey"  # a Linux without xfrm_user
    monkeypatch.setattr(xfrm, "xfrm_available", lambda: True)
    monkeypatch.setattr(base.sys, "platform", "freebsd14")
    assert open_kernel("auto") == "pfkey"
    assert open_kernel("xfrm") == "xfrm"


EVENT_TYPES = [
    xfrm_structs.XFRM_MSG_ACQUIRE,
    xfrm_structs.XFRM_MSG_EXPIRE,
    xfrm_structs.XFRM_MSG_POLEXPIRE,
    xfrm_structs.XFRM_MSG_NEWSA,
    xfrm_structs.XFRM_MSG_UPDSA,
    xfrm_structs.XFRM_MSG_DELSA,
    xfrm_structs.XFRM_MSG_FLUSHSA,
    xfrm_structs.XFRM_MSG_NEWPOLICY,
    xfrm_structs.XFRM_MSG_UPDPOLICY,
    xfrm_structs.XFRM_MSG_DELPOLICY,
    xfrm_structs.XFRM_MSG_FLUSHPOLICY,
]


@given(hs.sampled_from(EVENT_TYPES), hs.binary(max_size=600), hs.integers(0, 599))
@settings(max_examples=400, deadline=None)
def test_any_event_bytes_give_a_message_none_or_a_decode_error(mtype, junk, cut):
    # random bytes, and a well-formed SA or policy cut short or with junk attributes after it
    info, attrs = xfrm_pfkey.sa_request(memo_add())
    pinfo, pattrs = xfrm_pfkey.policy_request(spd(2, []), new_reqid=lambda: 1)
    for payload in (
        junk,
        (info.pack() + nl.attrs(attrs) + junk)[: 224 + cut],
        pinfo.pack() + junk,
    ):
        try:
            out = xfrm_pfkey.event_message(nl.NlMsg(mtype, 0, 0, 0, payload))
        except (xfrm_structs.XfrmDecodeError, nl.NetlinkDecodeError):
            continue
        assert out is None or isinstance(out, Message)
