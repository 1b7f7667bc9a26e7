"""The seed memo's racoon.conf files (ipsec-memo sections 5 and 10) parse unchanged."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pyracoon.config import IdentifierKind, ProposalCheck, parse_file
from pyracoon.wire.constants import AuthenticationMethod, ExchangeType, IDType

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
MEMO = ROOT / "docs" / "memo.md"  # the seed memo, in the repository

HOST_NA12 = "2001:240:7:101:290:99ff:fe2a:1139"
HOST_CANBE = "2001:240:7:101:280:4cff:fe20:5450"


def test_seed_file_is_the_memo_text_unchanged() -> None:
    memo = MEMO.read_text()
    section = memo.split("## 5. `/usr/local/etc/racoon/racoon.conf`")[1]
    assert section.split("```\n")[1] == (CONF / "racoon.conf").read_text()


def test_seed_racoon_conf_model() -> None:
    config = parse_file(CONF / "racoon.conf")
    assert config.warnings == []  # backupsa is acted upon by the daemon (pyracoon -B)
    assert config.paths.include == "/usr/local/etc/racoon"
    assert config.paths.certificate == "/usr/local/etc/racoon/cert"
    assert config.paths.backupsa == "/usr/local/etc/racoon/backupsa"
    assert (
        config.paths.resolve("certificate", "host_cert.pem")
        == "/usr/local/etc/racoon/cert/host_cert.pem"
    )
    assert config.paths.pidfile_path() == "/var/run/racoon.pid"

    (remote,) = config.remotes
    assert remote.anonymous and remote.address is None and remote.name is None
    assert remote.exchange_modes == [ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE]
    assert remote.initiator_exchange is ExchangeType.IDENTITY_PROTECTION
    assert remote.certificate_type is not None
    assert (
        remote.certificate_type.kind,
        remote.certificate_type.certificate,
        remote.certificate_type.private_key,
    ) == ("x509", "host_cert.pem", "host_priv.pem")
    assert remote.my_identifier.kind is IdentifierKind.ASN1DN
    assert remote.my_identifier.value is None
    # Code defaults that the file does not set.
    assert remote.lifetime == 28800
    assert remote.proposal_check is ProposalCheck.STRICT
    assert (remote.send_cert, remote.send_cr, remote.verify_cert) == (True, True, True)
    assert remote.match_empty_cr is False
    assert remote.nonce_size == 16 and remote.initial_contact is True
    (proposal,) = remote.proposals
    assert proposal.authentication_method is AuthenticationMethod.RSA_SIGNATURES
    assert proposal.encryption.ike_id == 5 and proposal.key_length is None
    assert proposal.hash.ike_id == 2
    assert proposal.dh_group == 2
    assert remote.proposal_lifetime(proposal) == 28800
    # Aggressive mode allowed: the shared DH group is recorded.
    assert remote.dh_group == 2

    (sainfo,) = config.sainfos
    assert sainfo.local_id is None and sainfo.remote_id is None
    assert sainfo.lifetime == 180  # "lifetime time 3 min"
    assert sainfo.pfs_group is None
    assert [a.algorithm.esp_id for a in sainfo.encryption] == [3]
    assert [a.algorithm.auth_attribute for a in sainfo.authentication] == [2]
    assert [a.algorithm.ipcomp_id for a in sainfo.compression] == [2]

    assert config.remote_for("2001:240:7:100::1:6", 500) is remote
    assert config.timer.phase1 == 30 and config.timer.phase2 == 30
    assert config.complex_bundle is True


@pytest.mark.parametrize(
    ("name", "lifetime"),
    [("racoon.conf.sainfo-blowfish", 28800), ("racoon.conf.sainfo-lifetime", 30)],
)
def test_seed_per_peer_sainfo(name: str, lifetime: int) -> None:
    config = parse_file(CONF / name)
    assert config.warnings == []
    # The per-peer sainfo (score 2) is searched before the anonymous one (score 0).
    peer, anonymous = config.sainfos
    assert anonymous.local_id is None and anonymous.lifetime == 180
    assert peer.local_id is not None and peer.remote_id is not None
    assert peer.local_id.id_type is IDType.IPV6_ADDR
    assert peer.local_id.data == ipaddress.ip_address(HOST_NA12).packed
    assert peer.remote_id.data == ipaddress.ip_address(HOST_CANBE).packed
    assert (peer.local_id.protocol_id, peer.local_id.port) == (0, 0)
    assert peer.lifetime == lifetime
    (enc,) = peer.encryption
    assert enc.name == "blowfish" and enc.algorithm.esp_id == 7 and enc.key_length == 128
    assert [a.algorithm.name for a in peer.authentication] == ["hmac-md5"]
    assert [a.name for a in peer.compression] == ["deflate"]


def test_seed_per_peer_sainfo_is_chosen_for_its_hosts() -> None:
    from pyracoon.wire.payloads import Identification

    config = parse_file(CONF / "racoon.conf.sainfo-lifetime")
    local = Identification.from_address(HOST_NA12)
    remote = Identification.from_address(HOST_CANBE)
    chosen = config.sainfo_for(local, remote)
    assert chosen is not None and chosen.lifetime == 30
    # Swapped IDs: only the anonymous sainfo fits.
    fallback = config.sainfo_for(remote, local)
    assert fallback is not None and fallback.lifetime == 180
