"""pyracoon and strongSwan's charon, each with its own real kernel, carry a ping as ESP both ways.

Proof 3 of the real-kernel issue. In one lab kernel, host1 runs pyracoon with ``--kernel pfkey``
and the racoon-style ``require`` SPD (``pysetkey --kernel pfkey``); host2 runs charon with its
ordinary kernel-netlink, which installs charon's policies and SAs through XFRM. Main mode, both
roles, with certificates (the memo's 3des/sha1/modp1024) and with a pre-shared key (AES-128, so
charon's openssl plugin is needed). The initiating side's own kernel starts the negotiation: a
ping hits pyracoon's policy (PF_KEY ACQUIRE) or charon's trap policy (XFRM ACQUIRE).

Passing means: pyracoon logged its ISAKMP-SA and both IPsec-SAs, charon its IKE_SA and CHILD_SA;
three pings each way were all answered and no echo crossed the wire in the clear; tcpdump saw
ESP in both directions with exactly the SPIs the kernels hold; and the two kernels hold the same
two SAs (endpoints, SPI, encryption and integrity keys) crosswise, which are also the SPIs
``swanctl --list-sas`` reports. Every failure message carries both daemons' logs.
"""

from __future__ import annotations

import re

import pytest
from lab_charon import CharonCase, Scenario, charon_unavailable, negotiate
from labtest import lab_unavailable

from pyracoon.kernellab import KernelLab

RSASIG_V4 = Scenario("main", "rsasig", 4, "3des-sha1-modp1024", False, "transport")
PSK_V4 = Scenario("main", "psk", 4, "aes128-sha1-modp1536", False, "transport")
PSK_V6 = Scenario("main", "psk", 6, "aes128-sha1-modp1536", False, "transport")
#: Both roles for IPv4; IPv6 once, with pyracoon initiating, which takes its PF_KEY ACQUIRE,
#: GETSPI, UPDATE and ADD through IPv6 addresses (each case costs a lab boot and ~20 s).
CASES = [
    (RSASIG_V4, "pyracoon-initiates"),
    (RSASIG_V4, "charon-initiates"),
    (PSK_V4, "pyracoon-initiates"),
    (PSK_V4, "charon-initiates"),
    (PSK_V6, "pyracoon-initiates"),
]


@pytest.fixture(autouse=True)
def _charon_present() -> None:
    reason = charon_unavailable()
    if reason:
        lab_unavailable(reason)


def check(case: CharonCase) -> None:
    """Everything the module docstring promises, each assertion with the whole story."""
    why = case.explain()
    h1, h2 = case.pyracoon.address, case.charon.address
    assert not case.error, why
    # present as a file is not loaded: without openssl charon has no 3DES and no AES-CBC
    loaded = case.plugins.split()
    for plugin in ("openssl", "kernel-netlink"):
        assert plugin in loaded, f"charon did not load its {plugin} plugin\n{why}"
    # pysetkey's SPD as the kernel holds it: without its templates nothing can be negotiated
    assert case.templates() >= 2, f"pyracoon's policies have no ESP templates in XFRM\n{why}"

    log = case.pyracoon_log
    assert "ISAKMP-SA established" in log and log.count("IPsec-SA established") == 2, why
    assert "ERROR" not in log and "Traceback" not in log, why
    # who started, and from which kernel's ACQUIRE
    if case.pyracoon_initiates:
        assert "IPsec-SA request for" in log and "initiate new phase 1 negotiation" in log, why
    else:
        assert "respond new phase 1 negotiation" in log, why
        assert "received a XFRM_MSG_ACQUIRE" in case.charon_log, why
    assert "Identity Protection mode" in log, why
    assert re.search(r"IKE_SA interop\[\d+\] established between", case.charon_log), why
    child = re.search(r"CHILD_SA child\{\d+\} established with SPIs", case.charon_log)
    assert child, why
    assert "INSTALLED, TRANSPORT" in case.list_sas, why

    assert all("3 received" in out for out in case.pings.values()), why
    assert len(case.pings) == 2, why
    assert case.clear_echoes() == [], why

    sas = {(s.src, s.dst, s.spi, s.enc, s.auth) for s in case.states["host1"]}
    theirs = {(s.src, s.dst, s.spi, s.enc, s.auth) for s in case.states["host2"]}
    assert len(sas) == 2 and sas == theirs, why
    assert all(enc and auth for *_, enc, auth in sas), why
    by_dir = {(src, dst): spi for src, dst, spi, *_ in sas}
    assert set(by_dir) == {(h1, h2), (h2, h1)}, why
    # charon's inbound SPI is what pyracoon sends with, its outbound what pyracoon receives
    assert case.charon_spis() == (by_dir[(h1, h2)], by_dir[(h2, h1)]), why
    assert case.wire_esp() >= {(h1, h2, by_dir[(h1, h2)]), (h2, h1, by_dir[(h2, h1)])}, why
    assert {spi for *_, spi in case.wire_esp()} == set(by_dir.values()), why


@pytest.mark.parametrize(("sc", "role"), CASES, ids=[f"{s.ident}-{r}" for s, r in CASES])
def test_pyracoon_and_charon_carry_ping_as_esp(lab: KernelLab, sc: Scenario, role: str) -> None:
    case = negotiate(lab, sc, pyracoon_initiates=role == "pyracoon-initiates")
    check(case)
