"""pyracoon against libreswan's pluto: main mode, RSA signatures (asn1dn), modp2048, both roles.

Phase 1 is what pluto can prove on this kernel (see interop_pluto.py): both sides log the ISAKMP
SA as established with the same cookies and pluto states the suite it agreed to.  Quick mode is
negotiated as far as pluto's kernel (pluto accepts our QM1, or our QM2 when it initiates, and
tshark decrypts them with pyracoon's key log), but pluto cannot install ESP here, so no SA pair
is compared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Certs, require
from interop_lab import NetnsPair, Pyracoon, Scenario, unavailable
from interop_pluto import Pluto, fetch_libreswan, libreswan_version
from interop_tshark import Capture, check_capture

from pyracoon.lab import Issued

SC = Scenario("main", "rsasig", 4, "aes256-sha256-modp2048", True, "transport")
_root: list[tuple[Path | None, str]] = []


@pytest.fixture
def libreswan() -> Path:
    require("certutil", "pk12util", "dpkg", "apt-get")
    if not _root:
        _root.append(fetch_libreswan())
    root, why = _root[0]
    if root is None:
        unavailable(f"libreswan could not be unpacked: {why}")
    assert root is not None
    return root


def dn(issued: Issued) -> str:
    return ", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in issued.cert.subject)


@pytest.mark.parametrize("role", ["pyracoon-initiates", "pluto-initiates"])
def test_pluto_main_mode_rsasig_modp2048(
    net: NetnsPair,
    tmpdir_short: Path,
    certs: Certs,
    libreswan: Path,
    record: list[dict],
    role: str,
) -> None:
    me, peer = SC.addresses
    pyr = Pyracoon(net.a, me, tmpdir_short / "p")
    pluto = Pluto(net.b, tmpdir_short / "l", libreswan, peer, me)
    cap = Capture(net.a, net.veth_a, tmpdir_short / "ike.pcap")
    try:
        pyr.install(certs.ca, certs.pyracoon, peer)
        pyr.load_spd(SC, peer)
        conf = pyr.configure(SC, peer)
        pluto.configure(
            certs.ca,
            certs.peer,
            dn(certs.pyracoon),
            ike="aes256-sha2_256;modp2048",
            esp="aes256-sha2_256;modp2048",
        )
        pluto.start()
        cap.start()
        pyr.start(conf)
        if role == "pyracoon-initiates":
            pyr.trigger(SC, peer)
        else:
            pluto.initiate()
        assert pluto.wait_log(r"IKE SA established \{auth=RSA_SIG cipher=AES_CBC_256 "
                              r"integ=HMAC_SHA2_256 group=MODP2048\}"), pluto.summary()  # fmt: skip
        assert pyr.host.wait_log("ISAKMP-SA established", 10), pyr.why()
        assert pluto.wait_log(r"Peer ID is ID_DER_ASN1_DN: 'C=JP, O=pyracoon lab, CN=pyracoon'")
        assert pluto.wait_log(r"authenticated peer '2048-bit RSA")
        # the same ISAKMP SA on both sides: pyracoon's cookies are in pluto's debug log
        m = re.search(r"spi:([0-9a-f]{16}):([0-9a-f]{16})", pyr.log_text())
        assert m, pyr.log_text()
        flat = re.sub(r"\s+", "", pluto.log_text().lower())
        assert m.group(1) in flat and m.group(2) in flat
        # quick mode got as far as pluto's kernel: pluto accepted QM1 (responder) or our QM2
        # (initiator), derived its keys and only then failed to install ESP
        add_sa = r"netlink response for Add SA esp\.\S+: Protocol not supported"
        assert pluto.wait_log(add_sa, 10), pluto.summary()
        cap.stop()
        check_capture(cap.path, pyr.keylog_path, quick_mode=True)
        assert pyr.alive(), pyr.why()
        assert "Traceback" not in pyr.log_text() and "internal error" not in pyr.log_text()
    finally:
        cap.stop()
        pluto.stop()
        pyr.stop()
    record.append(
        {
            "peer": "libreswan pluto (unpacked, no ESP in kernel)",
            "version": libreswan_version(libreswan),
            "mode": SC.mode,
            "auth": "rsasig (asn1dn)",
            "family": "IPv4",
            "suite": SC.suite,
            "pfs": "modp2048",
            "encap": SC.encap,
            "role": "pyracoon initiates" if role == "pyracoon-initiates" else "pyracoon responds",
            "checks": "phase 1 established on both sides, QM accepted by pluto, tshark decrypts; "
            "no SA pair (pluto cannot install ESP here)",
        }
    )
