"""pyracoon against strongSwan's charon (IKEv1), both roles, over a veth pair between namespaces.

The matrix is a covering set, each row run in both roles (pyracoon initiates on an ACQUIRE from
its kernel; charon initiates through ``swanctl --initiate``):

=========== ====== ==== ====================== ===== =========
mode        auth   IP   suite (IKE = PFS group) PFS  encap
=========== ====== ==== ====================== ===== =========
main        rsasig v4   3des-sha1-modp1024      no    transport   (the seed memo's setup)
aggressive  rsasig v6   aes256-sha256-modp2048  yes   tunnel
main        psk    v6   aes128-sha1-modp1536    yes   transport
aggressive  psk    v4   aes256-sha256-modp2048  no    tunnel
main        psk    v4   aes128-sha1-modp1536    no    tunnel
=========== ====== ==== ====================== ===== =========

Passing means: phase 1 and quick mode complete on both sides, and the two ESP SAs pyracoon
installed in its pyracoon-kernel (read back with a DUMP) carry the SPIs charon chose/was given
(charon's inbound SPI = pyracoon's outbound one) and the very keys charon derived and logged.
Every datagram is captured on pyracoon's veth, and tshark must dissect all of it without a
malformed-packet warning and decrypt phase 1 and quick mode with the table pyracoon's
``--ike-keylog`` wrote.

One more test runs a stock charon (no fake kernel): it cannot install ESP on this kernel and
deletes the SA it just negotiated; pyracoon must take the Delete, log it, and keep serving.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import Certs, require_charon
from interop_charon import Charon, ChildKeys, charon_version
from interop_lab import GROUP_NAMES, SUITES, KernelSa, NetnsPair, Pyracoon, Scenario
from interop_tshark import Capture, check_capture

MATRIX = [
    Scenario("main", "rsasig", 4, "3des-sha1-modp1024", False, "transport"),
    Scenario("aggressive", "rsasig", 6, "aes256-sha256-modp2048", True, "tunnel"),
    Scenario("main", "psk", 6, "aes128-sha1-modp1536", True, "transport"),
    Scenario("aggressive", "psk", 4, "aes256-sha256-modp2048", False, "tunnel"),
    Scenario("main", "psk", 4, "aes128-sha1-modp1536", False, "tunnel"),
]
ROLES = ["pyracoon-initiates", "charon-initiates"]
SADB_MODE = {"transport": 1, "tunnel": 2}


def compare(
    sas: list[KernelSa], child: ChildKeys, me: str, we_initiate: bool, sc: Scenario, log: str
) -> None:
    """pyracoon's kernel SAs against charon's CHILD_SA, direction by direction."""
    assert len(sas) == 2 and {s.src for s in sas} == {s.dst for s in sas}, f"{sas}\n{log}"
    outbound = next(s for s in sas if s.src == me)
    inbound = next(s for s in sas if s.dst == me)
    mine, theirs = ("initiator", "responder") if we_initiate else ("responder", "initiator")
    assert outbound.spi == child.spi_in, "our outbound SPI is charon's inbound one"
    assert inbound.spi == child.spi_out, "our inbound SPI is charon's outbound one"
    assert outbound.ekey == child.keys[f"encryption {mine} key"] != ""
    assert outbound.akey == child.keys[f"integrity {mine} key"] != ""
    assert inbound.ekey == child.keys[f"encryption {theirs} key"] != ""
    assert inbound.akey == child.keys[f"integrity {theirs} key"] != ""
    assert {s.mode for s in sas} == {SADB_MODE[sc.encap]}


def negotiate(
    net: NetnsPair,
    tmp: Path,
    certs: Certs,
    sc: Scenario,
    we_initiate: bool,
    fake_kernel: Path | None,
) -> tuple[Pyracoon, Charon, Capture]:
    """Start both sides and let the chosen one initiate; the caller stops everything."""
    me, peer = sc.addresses
    pyr = Pyracoon(net.a, me, tmp / "p")
    charon = Charon(net.b, tmp / "c", peer, me, fake_kernel)
    cap = Capture(net.a, net.veth_a, tmp / "ike.pcap")
    try:
        pyr.install(certs.ca, certs.pyracoon, peer)
        pyr.load_spd(sc, peer)
        conf = pyr.configure(sc, peer)
        # charon's initiator config names pyracoon's address: it also responds, and the stock
        # test lets it initiate a second quick mode
        charon.configure(
            sc, initiator=not we_initiate or fake_kernel is None, ca=certs.ca, me=certs.peer
        )
        charon.start()
        cap.start()
        pyr.start(conf)
        if we_initiate:
            pyr.trigger(sc, peer)
        else:
            charon.initiate()
    except BaseException:
        cap.stop()
        charon.stop()
        pyr.stop()
        raise
    return pyr, charon, cap


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sc", MATRIX, ids=[s.ident for s in MATRIX])
def test_charon(
    net: NetnsPair,
    tmpdir_short: Path,
    certs: Certs,
    fake_kernel: Path,
    record: list[dict],
    sc: Scenario,
    role: str,
) -> None:
    we_initiate = role == "pyracoon-initiates"
    pyr, charon, cap = negotiate(net, tmpdir_short, certs, sc, we_initiate, fake_kernel)
    try:
        sas = pyr.wait_sas()
        assert charon.wait_log(r"CHILD_SA \S+ established"), charon.diagnostics()
        compare(sas, charon.child(), pyr.address, we_initiate, sc, pyr.log_text())
        log = pyr.log_text()
        assert "ISAKMP-SA established" in log and log.count("IPsec-SA established") == 2, log
        word = "Identity Protection" if sc.mode == "main" else "Aggressive"
        assert f"{word} mode" in log, log
        assert "ERROR" not in log, log
        assert "--ike-keylog" in log  # the WARNING that the key log is on
        cap.stop()
        check_capture(cap.path, pyr.keylog_path, quick_mode=True)
    finally:
        cap.stop()
        charon.stop()
        pyr.stop()
    suite = SUITES[sc.suite]
    record.append(
        {
            "peer": "strongSwan charon",
            "version": charon_version(),
            "mode": sc.mode,
            "auth": "rsasig (asn1dn)" if sc.auth == "rsasig" else "psk",
            "family": f"IPv{sc.family}",
            "suite": sc.suite,
            "pfs": GROUP_NAMES[suite.group] if sc.pfs else "no",
            "encap": sc.encap,
            "role": "pyracoon initiates" if we_initiate else "pyracoon responds",
            "checks": "SPIs+keys equal, tshark decrypts",
        }
    )


def test_stock_charon_deletes_what_it_cannot_install(
    net: NetnsPair, tmpdir_short: Path, certs: Certs, record: list[dict]
) -> None:
    """Without the fake kernel charon fails to install ESP and says so in IKE.

    As the quick-mode responder it sends a Delete right after QM3: pyracoon must purge the SAs
    it named (even when the Delete overtakes the kernel's install replies) and log it.  As the
    quick-mode initiator on the same ISAKMP SA it sends NO-PROPOSAL-CHOSEN instead of QM3:
    pyracoon logs it, installs nothing, and keeps serving throughout.
    """
    require_charon()
    sc = MATRIX[0]
    pyr, charon, cap = negotiate(net, tmpdir_short, certs, sc, True, None)
    try:
        if not charon.wait_log(r"unable to install|CHILD_SA \S+ established", 20):
            raise AssertionError(charon.diagnostics())
        if "unable to install" not in charon.log_text():
            pytest.skip("this kernel has ESP: a stock charon installs the SAs and sends no Delete")
        assert charon.wait_log(r"sending DELETE for ESP CHILD_SA"), charon.diagnostics()
        assert pyr.host.wait_log("purged IPsec-SA proto_id=ESP", 10), pyr.why()
        text = pyr.log_text()
        assert "IPsec-SA established" in text, text
        deadline = time.monotonic() + 5
        while pyr.sas() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pyr.sas() == [], "the SAs charon deleted are still in pyracoon's kernel"
        # still serving: charon now initiates a quick mode on the same ISAKMP SA; it fails its
        # install again and, as the initiator, sends NO-PROPOSAL-CHOSEN instead of QM3
        charon.initiate(timeout=10)
        assert pyr.host.wait_log("notification NO-PROPOSAL-CHOSEN received", 15), pyr.why()
        assert pyr.sas() == [], "a responder installs only after QM3"
        assert len(pyr.host.log_lines("ISAKMP-SA established")) == 1, pyr.why()
        assert pyr.alive(), pyr.why()
        text = pyr.log_text()
        assert "internal error" not in text and "Traceback" not in text, text
    finally:
        cap.stop()
        charon.stop()
        pyr.stop()
    for role in ("pyracoon initiates", "pyracoon responds"):
        record.append(
            {
                "peer": "strongSwan charon (stock, no ESP in kernel)",
                "version": charon_version(),
                "mode": sc.mode,
                "auth": "rsasig (asn1dn)",
                "family": "IPv4",
                "suite": sc.suite,
                "pfs": "no",
                "encap": sc.encap,
                "role": role,
                "checks": "its Delete / NO-PROPOSAL-CHOSEN after failed installs handled",
            }
        )


def test_dpd_probes_acknowledged_by_charon(
    net: NetnsPair, tmpdir_short: Path, certs: Certs, fake_kernel: Path, record: list[dict]
) -> None:
    """Our R-U-THERE (RFC 3706: cookies as SPI, 32-bit sequence) is understood and acked."""
    sc = Scenario("main", "psk", 4, "3des-sha1-modp1024", False, "transport")
    me, peer = sc.addresses
    pyr = Pyracoon(net.a, me, tmpdir_short / "p")
    charon = Charon(net.b, tmpdir_short / "c", peer, me, fake_kernel)
    try:
        pyr.install(certs.ca, certs.pyracoon, peer)
        pyr.load_spd(sc, peer)
        conf = pyr.configure(sc, peer, extra_remote="    dpd_delay 1;\n")
        charon.configure(sc, initiator=False, ca=certs.ca, me=certs.peer)
        charon.start()
        pyr.start(conf, "-d")  # the DPD lines are DEBUG
        pyr.trigger(sc, peer)
        pyr.wait_sas()
        assert pyr.host.wait_log("DPD R-U-THERE-ACK received", 10), pyr.why()
        assert "received Vendor ID: DPD" in pyr.log_text()
    finally:
        charon.stop()
        pyr.stop()
    record.append(
        {
            "peer": "strongSwan charon",
            "version": charon_version(),
            "mode": sc.mode,
            "auth": "psk",
            "family": "IPv4",
            "suite": sc.suite,
            "pfs": "no",
            "encap": sc.encap,
            "role": "pyracoon initiates",
            "checks": "our DPD R-U-THERE (RFC 3706) acknowledged",
        }
    )
