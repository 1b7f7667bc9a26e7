"""Automatic keying that lasts, on a real kernel: rekeys under a continuous ping; both sides first.

Proofs 4 and 5 of the real-kernel issue. The SPD is section 2's ``require`` pair, so a packet
without an SA is dropped, not sent in the clear: any gap in the keying shows as a lost ping.
On IPv4: on Linux a ``require`` policy between two IPv6 hosts also catches their neighbour
discovery (the advertisement comes back in the clear and is dropped), so nothing, not even IKE,
gets through before an SA exists; ARP is not IP and is never caught.
"""

from __future__ import annotations

import re
import time

import pytest

from pyracoon.kernellab import KernelLab
from pyracoon.memolab import (
    Outcome,
    capture,
    conf_file,
    ping,
    require_policies,
    start_daemons,
    stop_daemons,
    xfrm_states,
)

#: sainfo lifetime 20 s: the kernel's soft EXPIRE comes at 80 % of it (racoon's default)
SHORT = conf_file("racoon.conf").read_text().replace("lifetime time 3 min", "lifetime time 20 sec")


def explain(o: Outcome, *extra: str) -> str:
    logs = "\n".join(f"--- {k}\n{v[-5000:]}" for k, v in o.logs.items())
    return "\n".join([*o.steps, *extra, logs])


def first_contact(h1, h2, tries: int = 20) -> bool:
    """The first packet only starts the negotiation (``require`` drops it): ping until one does."""
    for _ in range(tries):
        if ping(h1, h2.address, count=1, wait=1):
            return True
    return False


@pytest.mark.parametrize("kernel", ["pfkey", "xfrm"])
def test_rekeys_under_a_continuous_ping_lose_no_packet(lab: KernelLab, kernel: str):
    """Soft EXPIRE starts each rekey, hard EXPIRE (or the peer's Delete) ends the old pair:
    over af_key and over the XFRM backend."""
    o = Outcome()
    hosts = start_daemons(
        lab, o, 4, racoon_conf=SHORT, setkey_file=require_policies, kernel=kernel
    )
    assert hosts is not None, explain(o)
    h1, h2 = hosts
    try:
        assert first_contact(h1, h2), explain(o)
        cap = capture(h2, "esp")
        count = 350  # 70 s at 0.2 s: at least three rekeys of a 20 s SA
        pinger = h1.host.spawn(f"exec ping -i 0.2 -c {count} -W 2 {h2.address}", name="ping")
        pinger.wait(100)
        result = pinger.output()
        cap.proc.stop()
        time.sleep(0.5)
        states = {h.name: xfrm_states(h) for h in hosts}
    finally:
        stop_daemons(hosts, o)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", result)
    assert m, result
    assert (int(m[1]), int(m[2])) == (count, count), explain(o, result)
    established = o.logs["host1"].count("IPsec-SA established")
    assert established >= 2 * 4, explain(o)  # the first pair and three rekeys
    spis = cap.esp_spis()
    assert len(spis) >= 2 * 4, spis  # the traffic moved to each new pair
    for name, sas in states.items():
        # old SAs went: at most the pair in use and the pair it replaced
        assert len(sas) <= 4, (name, sas)
    for h in ("host1", "host2"):
        assert "ERROR" not in o.logs[h], explain(o)


def test_both_hosts_sending_first_at_once_make_one_working_pair(lab: KernelLab):
    o = Outcome()
    hosts = start_daemons(lab, o, 4, setkey_file=require_policies)
    assert hosts is not None, explain(o)
    h1, h2 = hosts
    try:
        p1 = h1.host.spawn(f"exec ping -i 0.5 -c 40 -W 1 {h2.address}", name="ping1")
        p2 = h2.host.spawn(f"exec ping -i 0.5 -c 40 -W 1 {h1.address}", name="ping2")
        p1.wait(60)
        p2.wait(60)
        time.sleep(1)
        states = {h.name: xfrm_states(h) for h in hosts}
        after = (ping(h1, h2.address, count=3), ping(h2, h1.address, count=3))
    finally:
        stop_daemons(hosts, o)
    assert after == (True, True), explain(o, p1.output(), p2.output())
    for name, sas in states.items():
        per_direction: dict[tuple[str, str], int] = {}
        for sa in sas:
            per_direction[(sa.src, sa.dst)] = per_direction.get((sa.src, sa.dst), 0) + 1
        assert set(per_direction) == {(h1.address, h2.address), (h2.address, h1.address)}
        # no pile-up: both negotiations may finish, but never more than one pair each
        assert max(per_direction.values()) <= 2, (name, sas, explain(o))
