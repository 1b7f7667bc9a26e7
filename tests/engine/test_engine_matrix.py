"""Two engines negotiate end to end: main and aggressive mode x PSK and RSA signatures x IPv4
and IPv6 x with and without PFS.  Each ends with the same keys crosswise in the two simulated
kernels and the kernel requests racoon makes (racoon's pfkey.c)."""

from __future__ import annotations

from pathlib import Path

import pytest
from certs import build_pki
from harness import Host, Net, esp_sas

from pyracoon.engine import Phase1Established, Phase2Established
from pyracoon.kernel.sadb import Mode, SaState

ADDRS = {4: ("10.0.0.1", "10.0.0.2"), 6: ("fd00::1", "fd00::2")}


def conf(peer: str, me: str, mode: str, auth: str, pfs: bool, certdir: Path | None) -> str:
    head = f'path certificate "{certdir}";\n' if certdir else ""
    cert = ""
    if auth == "rsasig":
        cert = f"""
    certificate_type x509 "{me}.pem" "{me}.key";
    my_identifier asn1dn;
    peers_identifier asn1dn;
    verify_identifier on;"""
    pfs_line = "pfs_group modp1536;" if pfs else ""
    return (
        head
        + f"""
remote {peer} {{
    exchange_mode {mode};{cert}
    proposal {{ encryption_algorithm aes 256; hash_algorithm sha256;
               authentication_method {auth}; dh_group modp2048; }}
    proposal {{ encryption_algorithm 3des; hash_algorithm sha1;
               authentication_method {auth}; dh_group modp2048; }}
}}
sainfo anonymous {{
    {pfs_line}
    lifetime time 1 hour;
    encryption_algorithm aes 128, 3des;
    authentication_algorithm hmac_sha256, hmac_sha1;
    compression_algorithm deflate;
}}
"""
    )


def pair(tmp_path: Path, family: int, mode: str, auth: str, pfs: bool) -> tuple[Net, Host, Host]:
    a_addr, b_addr = ADDRS[family]
    certdir = (
        build_pki(tmp_path / "cert", {a_addr: a_addr, b_addr: b_addr}) if auth == "rsasig" else None
    )
    net = Net()
    a = net.host(
        "a", a_addr, conf(b_addr, a_addr, mode, auth, pfs, certdir), {b_addr: "shared secret"}
    )
    b = net.host(
        "b", b_addr, conf(a_addr, b_addr, mode, auth, pfs, certdir), {a_addr: "shared secret"}
    )
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    return net, a, b


def assert_keys_crosswise(a: Host, b: Host) -> None:
    """a's outbound SA is b's inbound SA, key for key, and the other way round."""
    a_sas, b_sas = esp_sas(a), esp_sas(b)
    assert len(a_sas) == 2 and len(b_sas) == 2
    for sa in a_sas:
        twin = [t for t in b_sas if t.spi == sa.spi and t.dst.addr == sa.dst.addr]
        assert len(twin) == 1, f"no twin for spi {sa.spi:#x}"
        t = twin[0]
        assert sa.state == t.state == SaState.MATURE
        assert sa.key_encrypt is not None and sa.key_encrypt.key == t.key_encrypt.key
        assert sa.key_auth is not None and sa.key_auth.key == t.key_auth.key
        assert sa.encrypt == t.encrypt == 12 and sa.auth == t.auth == 5  # aes, hmac-sha256
        assert len(sa.key_encrypt.key) == 16 and len(sa.key_auth.key) == 32
        assert sa.replay == 4 and sa.mode == Mode.TRANSPORT
        assert sa.hard.addtime == 3600 and sa.soft.addtime == 2880
    inbound = [s for s in a_sas if s.dst.addr == a.address][0]
    outbound = [s for s in a_sas if s.dst.addr == b.address][0]
    assert inbound.key_encrypt.key != outbound.key_encrypt.key


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("mode", ["main", "aggressive"])
@pytest.mark.parametrize("auth", ["pre_shared_key", "rsasig"])
@pytest.mark.parametrize("pfs", [False, True], ids=["nopfs", "pfs"])
def test_negotiation_matrix(tmp_path: Path, family: int, mode: str, auth: str, pfs: bool) -> None:
    net, a, b = pair(tmp_path, family, mode, auth, pfs)
    net.acquire(a, b)
    net.pump()
    assert_keys_crosswise(a, b)
    for h, peer in ((a, b), (b, a)):
        assert h.has_log(f"ISAKMP-SA established {h.address}[500]-{peer.address}[500] spi:"), (
            h.log_text()
        )
        est = [line.text for line in h.logs if line.text.startswith("IPsec-SA established:")]
        assert len(est) == 2
        assert all(t.startswith("IPsec-SA established: ESP/Transport ") for t in est)
        assert any(isinstance(e, Phase1Established) for e in h.other_events)
        assert any(isinstance(e, Phase2Established) for e in h.other_events)
    assert a.has_log("initiate new phase 1 negotiation")
    assert b.has_log("respond new phase 1 negotiation")
    begin = "begin Identity Protection mode." if mode == "main" else "begin Aggressive mode."
    assert a.has_log(begin) and b.has_log(begin)
    # The first proposal (aes 256 / sha256) was chosen; the packet now goes out protected.
    assert (
        net.hosts[a.address].kernel.output(str(a.address), str(b.address)).verdict.name
        == "PROTECTED"
    )
