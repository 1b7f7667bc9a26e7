"""Quick mode beyond the plain ESP case: AH, IPComp bundles, tunnel mode with subnet IDs,
null encryption, non_auth, every ESP cipher and integrity algorithm racoon proposes."""

from __future__ import annotations

import pytest
from harness import Host, Net

from pyracoon.kernel.sadb import Direction, Level, Mode, SaFlags, SaType

A, B = "10.0.0.1", "10.0.0.2"


def conf(peer: str, sainfo: str, extra: str = "") -> str:
    return f"""
remote {peer} {{
    exchange_mode main;{extra}
    proposal {{ encryption_algorithm 3des; hash_algorithm md5;
               authentication_method pre_shared_key; dh_group modp768; }}
}}
{sainfo}
"""


def anonymous(enc: str = "aes", auth: str = "hmac_sha1", more: str = "") -> str:
    return f"""sainfo anonymous {{ {more}
    encryption_algorithm {enc}; authentication_algorithm {auth};
    compression_algorithm deflate; }}"""


def hosts(sainfo_a: str, sainfo_b: str | None = None) -> tuple[Net, Host, Host]:
    net = Net()
    a = net.host("a", A, conf(B, sainfo_a), {B: "k"})
    b = net.host("b", B, conf(A, sainfo_b or sainfo_a), {A: "k"})
    return net, a, b


def by_type(h: Host, satype: int) -> list:
    return [e for e in h.sas() if e.satype == satype]


def crosswise(a: Host, b: Host, satype: int) -> None:
    sa_a, sa_b = by_type(a, satype), by_type(b, satype)
    assert len(sa_a) == 2 and len(sa_b) == 2, (a.log_text(), b.log_text())
    for s in sa_a:
        t = next(x for x in sa_b if x.spi == s.spi and x.dst.addr == s.dst.addr)
        assert (s.key_encrypt and s.key_encrypt.key) == (t.key_encrypt and t.key_encrypt.key)
        assert (s.key_auth and s.key_auth.key) == (t.key_auth and t.key_auth.key)
        assert (s.auth, s.encrypt, s.mode, s.flags) == (t.auth, t.encrypt, t.mode, t.flags)


def test_ah_transport() -> None:
    net, a, b = hosts(anonymous(auth="hmac_sha256"))
    a.transport_policy(b, proto=51)
    b.transport_policy(a, proto=51)
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.AH)
    sa = by_type(a, SaType.AH)[0]
    assert sa.auth == 5 and len(sa.key_auth.key) == 32 and sa.key_encrypt is None
    assert a.has_log(f"IPsec-SA established: AH/Transport {A}[500]->{B}[500] spi=")


def test_ipcomp_esp_bundle() -> None:
    net, a, b = hosts(anonymous())
    a.transport_policy(b, bundle=[108, 50])
    b.transport_policy(a, bundle=[108, 50])
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    crosswise(a, b, SaType.IPCOMP)
    for sa in by_type(a, SaType.IPCOMP):
        assert sa.spi <= 0xFFFF and sa.encrypt == 2 and sa.flags == SaFlags.RAWCPI
        assert sa.replay == 0 and sa.key_encrypt is None
    assert a.has_log("IPsec-SA established: IPCOMP/Transport")
    assert a.kernel.output(A, B).verdict.name == "PROTECTED"


def test_tunnel_mode_with_subnet_ids() -> None:
    sa_a = """sainfo subnet 192.168.1.0/24 any subnet 192.168.2.0/24 any {
        pfs_group modp1024; encryption_algorithm aes 256;
        authentication_algorithm hmac_sha512; compression_algorithm deflate; }"""
    sa_b = """sainfo subnet 192.168.2.0/24 any subnet 192.168.1.0/24 any {
        pfs_group modp1024; encryption_algorithm aes 256;
        authentication_algorithm hmac_sha512; compression_algorithm deflate; }"""
    net, a, b = hosts(sa_a + "\n" + anonymous(enc="3des"), sa_b + "\n" + anonymous(enc="3des"))
    for h, mine, theirs, me, them in (
        (a, "192.168.1.0/24", "192.168.2.0/24", A, B),
        (b, "192.168.2.0/24", "192.168.1.0/24", B, A),
    ):
        # unique:7 / unique:8: only level unique carries a reqid into a Linux SPD
        tun = {"mode": Mode.TUNNEL, "level": Level.UNIQUE}
        h.spdadd(mine, theirs, Direction.OUTBOUND, tunnel=(me, them), reqid=7, **tun)
        h.spdadd(theirs, mine, Direction.INBOUND, tunnel=(them, me), reqid=8, **tun)
    net.pump()
    a.kernel.output("192.168.1.5", "192.168.2.9")
    net.pump()
    crosswise(a, b, SaType.ESP)
    for h in (a, b):
        inbound = next(s for s in by_type(h, SaType.ESP) if s.dst.addr == h.address)
        outbound = next(s for s in by_type(h, SaType.ESP) if s.dst.addr != h.address)
        assert inbound.mode == outbound.mode == Mode.TUNNEL
        assert inbound.reqid == 8 and outbound.reqid == 7
        assert inbound.encrypt == 12 and len(inbound.key_encrypt.key) == 32
        assert inbound.auth == 7 and len(inbound.key_auth.key) == 64
    assert a.has_log(f"IPsec-SA established: ESP/Tunnel {B}[500]->{A}[500]")
    assert a.kernel.output("192.168.1.5", "192.168.2.9").verdict.name == "PROTECTED"


def test_null_encryption_and_non_auth() -> None:
    net, a, b = hosts(anonymous(enc="null_enc"))
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    sa = by_type(a, SaType.ESP)[0]
    assert sa.encrypt == 11 and sa.key_encrypt is None and sa.auth == 3

    net, a, b = hosts(anonymous(enc="aes", auth="non_auth"))
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    sa = by_type(a, SaType.ESP)[0]
    assert sa.auth == 0 and sa.key_auth is None and len(sa.key_encrypt.key) == 16


ESP_CASES = [
    ("des", 2, 8),
    ("3des", 3, 24),
    ("blowfish", 7, 16),
    ("blowfish 448", 7, 56),
    ("cast128", 6, 16),
    ("aes 192", 12, 24),
    ("camellia 256", 22, 32),
    ("twofish", 253, 16),
]
AUTH_CASES = [("hmac_md5", 2, 16), ("hmac_sha1", 3, 20), ("hmac_sha384", 6, 48)]


@pytest.mark.parametrize("enc,sadb_enc,enc_len", ESP_CASES, ids=[c[0] for c in ESP_CASES])
@pytest.mark.parametrize("auth,sadb_auth,auth_len", AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_esp_algorithms(
    enc: str, sadb_enc: int, enc_len: int, auth: str, sadb_auth: int, auth_len: int
) -> None:
    net, a, b = hosts(anonymous(enc=enc, auth=auth))
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    sa = by_type(b, SaType.ESP)[0]
    assert (sa.encrypt, len(sa.key_encrypt.key)) == (sadb_enc, enc_len)
    assert (sa.auth, len(sa.key_auth.key)) == (sadb_auth, auth_len)


def test_responder_picks_first_acceptable_of_many() -> None:
    """The initiator offers enc x auth combinations; the responder takes the first it accepts."""
    net, a, b = hosts(
        anonymous(enc="aes, 3des, blowfish", auth="hmac_sha1, hmac_md5"),
        anonymous(enc="blowfish", auth="hmac_md5"),
    )
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    assert by_type(a, SaType.ESP)[0].encrypt == 7 and by_type(a, SaType.ESP)[0].auth == 2


def test_generate_policy_unique_tunnel_installs_and_removes_policies() -> None:
    from pyracoon.kernel import pfkey
    from pyracoon.kernel.sadb import ExtType, Level, MsgType

    sa_a = """sainfo subnet 192.168.1.0/24 any subnet 192.168.2.0/24 any {
        lifetime time 600 sec; encryption_algorithm aes; authentication_algorithm hmac_sha1;
        compression_algorithm deflate; }"""
    net = Net()
    a = net.host("a", A, conf(B, sa_a), {B: "k"})
    b = net.host("b", B, conf(A, anonymous(), "\n    generate_policy unique;"), {A: "k"})
    a.spdadd(
        "192.168.1.0/24", "192.168.2.0/24", Direction.OUTBOUND, mode=Mode.TUNNEL, tunnel=(A, B)
    )
    a.spdadd("192.168.2.0/24", "192.168.1.0/24", Direction.INBOUND, mode=Mode.TUNNEL, tunnel=(B, A))
    net.pump()
    a.kernel.output("192.168.1.1", "192.168.2.1")
    net.pump()
    crosswise(a, b, SaType.ESP)
    assert b.has_log("generate policy: 192.168.1.0/24")
    dirs = sorted(p.dir for p in b.kernel.spd)
    assert dirs == [Direction.INBOUND, Direction.OUTBOUND, Direction.FWD]
    for p in b.kernel.spd:
        assert [(r.level, r.reqid, r.mode) for r in p.requests] == [(Level.UNIQUE, 1, Mode.TUNNEL)]
    assert {s.reqid for s in by_type(b, SaType.ESP)} == {1}
    # a deletes its inbound SA (setkey on a): a tells b, b drops the SAs and its policies
    inbound = next(s for s in by_type(a, SaType.ESP) if s.dst.addr == a.address)
    msg = pfkey.Message(MsgType.DELETE, SaType.ESP, seq=5, pid=777)
    msg.add(pfkey.SA(spi=inbound.spi))
    msg.add(pfkey.Address(ExtType.ADDRESS_SRC, inbound.src.addr))
    msg.add(pfkey.Address(ExtType.ADDRESS_DST, inbound.dst.addr))
    a.kernel.open().send(msg)
    net.pump()
    assert not by_type(b, SaType.ESP), b.log_text()
    assert not b.kernel.spd


def test_ah_esp_bundle() -> None:
    net, a, b = hosts(anonymous(auth="hmac_sha1"))
    a.transport_policy(b, bundle=[50, 51])
    b.transport_policy(a, bundle=[50, 51])
    net.pump()
    net.acquire(a, b)
    net.pump()
    crosswise(a, b, SaType.ESP)
    crosswise(a, b, SaType.AH)
