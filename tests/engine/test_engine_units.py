"""Unit tests of the pieces: psk.txt parsing and lookup, the state table, proposal choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Net

from pyracoon.config import parse_string
from pyracoon.engine import NoPreSharedKey, NoProposalChosen, PskFile, PskTable
from pyracoon.engine.phase1 import STATE_TABLE, P1State, Role
from pyracoon.engine.proposals import phase1_sa, select_phase1
from pyracoon.engine.psk import parse_psk_line
from pyracoon.wire import decode_message, encode_message
from pyracoon.wire.constants import ExchangeType


@pytest.mark.parametrize(
    "line,expected",
    [
        ("10.0.0.1 simple", ("10.0.0.1", b"simple")),
        ("10.0.0.1\t  with  inner spaces ", ("10.0.0.1", b"with  inner spaces ")),
        ("host.example 0x0a0B", ("host.example", b"\x0a\x0b")),
        ("odd 0xabc", ("odd", b"\x0a\xbc")),
        ("# 10.0.0.1 commented", None),
        ("   ", None),
        ("lonely-key", None),
        ("* wildcard", ("*", b"wildcard")),
    ],
)
def test_parse_psk_line(line: str, expected: tuple[str, bytes] | None) -> None:
    assert parse_psk_line(line) == expected


def test_psk_file_lookup_order_and_wildcard(tmp_path: Path) -> None:
    f = tmp_path / "psk.txt"
    f.write_text("10.0.0.2 by-address\nb.example by-id\n* anyone\n")
    os.chmod(f, 0o600)
    psk = PskFile(f)
    assert psk.lookup(["b.example", "10.0.0.2"]).key == b"by-id"
    assert psk.lookup(["10.0.0.2"]).key == b"by-address"
    found = psk.lookup(["10.9.9.9"])
    assert found.key == b"anyone" and found.matched_id == "*"
    assert PskTable({}).lookup(["x"]).key is None


def test_psk_file_permission_and_owner(tmp_path: Path) -> None:
    f = tmp_path / "psk.txt"
    f.write_text("10.0.0.2 k\n")
    for mode in (0o640, 0o604, 0o660):
        os.chmod(f, mode)
        with pytest.raises(NoPreSharedKey, match="has weak file permission"):
            PskFile(f).lookup(["10.0.0.2"])
    os.chmod(f, 0o400)
    assert PskFile(f).lookup(["10.0.0.2"]).key == b"k"
    with pytest.raises(NoPreSharedKey, match="failed to open"):
        PskFile(tmp_path / "missing.txt").lookup(["10.0.0.2"])


def test_state_table_covers_both_modes_and_roles() -> None:
    main, aggr = ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE
    assert {(e, r) for e, r, _ in STATE_TABLE} == {
        (main, Role.INITIATOR),
        (main, Role.RESPONDER),
        (aggr, Role.INITIATOR),
        (aggr, Role.RESPONDER),
    }
    finals = [row for row in STATE_TABLE.values() if row.next_state is P1State.ESTABLISHED]
    assert len(finals) == 4  # MM5/MM6 and AM2/AM3 end in an ISAKMP SA
    assert all(
        row.encrypted
        for (e, _, _), row in STATE_TABLE.items()
        if e == main and row.next_state is P1State.ESTABLISHED
    )


CONF = """
remote 10.0.0.2 {
    exchange_mode main;
    proposal { encryption_algorithm aes 256; hash_algorithm sha256;
               authentication_method pre_shared_key; dh_group modp2048; lifetime time 1 hour; }
    proposal { encryption_algorithm 3des; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }
}
"""


def test_phase1_sa_is_racoons_layout() -> None:
    remote = parse_string(CONF).remotes[0]
    sa = phase1_sa(remote)
    assert len(sa.proposals) == 1 and sa.proposals[0].number == 1
    t1, t2 = sa.proposals[0].transforms
    assert (t1.number, t2.number) == (1, 2)
    # life type, duration, enc, keylen, auth, hash, group -- racoon's order
    assert [a.type for a in t1.attributes] == [11, 12, 1, 14, 3, 2, 4]
    assert [a.type for a in t2.attributes] == [11, 12, 1, 3, 2, 4]  # 3des: no Key Length
    assert t1.attribute(12).as_int == 3600 and t2.attribute(12).as_int == 28800


def test_select_phase1_takes_the_peers_order() -> None:
    remote = parse_string(CONF).remotes[0]
    mine = phase1_sa(remote)
    flipped = type(mine)(
        (type(mine.proposals[0])(1, 1, b"", tuple(reversed(mine.proposals[0].transforms))),)
    )
    choice = select_phase1(remote, flipped)
    assert choice.params.encryption.name == "3des"  # the peer's first acceptable transform
    only_des = parse_string(CONF.replace("aes 256", "des").replace("3des", "des")).remotes[0]
    with pytest.raises(NoProposalChosen) as info:
        select_phase1(only_des, mine)
    assert any("encryption_algorithm: peer aes, my des" in d for d in info.value.details)


def test_secrets_never_reach_the_log() -> None:
    conf = """
remote {peer} {{ exchange_mode main;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }} }}
sainfo anonymous {{ encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate; }}
"""
    net = Net()
    secret = "correct horse battery staple"
    a = net.host("a", "10.0.0.1", conf.format(peer="10.0.0.2"), {"10.0.0.2": secret})
    b = net.host("b", "10.0.0.2", conf.format(peer="10.0.0.1"), {"10.0.0.1": secret})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    text = a.log_text() + b.log_text()
    ph1 = next(iter(a.engine.ph1s.values()))
    assert ph1.keys is not None
    forbidden = [
        secret,
        secret.encode().hex(),
        ph1.keys.skeyid.hex(),
        ph1.keys.skeyid_e.hex(),
        ph1.keys.skeyid_a.hex(),
        ph1.keys.skeyid_d.hex(),
    ]
    forbidden += [s.key_encrypt.key.hex() for s in a.sas() if s.key_encrypt]
    forbidden += [s.key_auth.key.hex() for s in a.sas() if s.key_auth]
    assert len(forbidden) == 10
    for f in forbidden:
        assert f not in text


def test_base_mode_is_refused_clearly() -> None:
    conf = CONF.replace("exchange_mode main", "exchange_mode base")
    net = Net()
    a = net.host("a", "10.0.0.1", conf, {"10.0.0.2": "k"})
    b = net.host("b", "10.0.0.2", CONF.replace("10.0.0.2", "10.0.0.1"), {"10.0.0.1": "k"})
    a.transport_policy(b)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert a.has_log("Base mode is not supported"), a.log_text()
    assert not net.delivered


def test_wire_roundtrip_of_what_we_send() -> None:
    """Every datagram an exchange produces decodes and re-encodes byte for byte."""
    conf = """
remote {peer} {{ exchange_mode main;
    proposal {{ encryption_algorithm 3des; hash_algorithm md5;
               authentication_method pre_shared_key; dh_group modp768; }} }}
sainfo anonymous {{ encryption_algorithm des; authentication_algorithm hmac_md5;
    compression_algorithm deflate; }}
"""
    net = Net()
    a = net.host("a", "10.0.0.1", conf.format(peer="10.0.0.2"), {"10.0.0.2": "k"})
    b = net.host("b", "10.0.0.2", conf.format(peer="10.0.0.1"), {"10.0.0.1": "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert len(net.delivered) >= 10
    for d in net.delivered:
        assert encode_message(decode_message(d.data)) == d.data
