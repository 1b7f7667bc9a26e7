"""The memo, unchanged, on a real Linux kernel: manual keying, then racoon-style automatic keying.

Proofs 1 and 2 of the real-kernel issue. Each test boots its own lab kernel with the memo's two
hosts on one link (its own IPv6 addresses, or 10.1.0.1/.2), loads the repository's ``conf/``
files with ``pysetkey --kernel pfkey`` and, for automatic keying, runs two ``pyracoon`` daemons
with the memo's racoon.conf. What the kernel holds is read back twice: through our PF_KEY codec
(``pysetkey -D/-DP``) and through iproute2's XFRM view (``ip -s xfrm state``), which shares
nothing with our code.
"""

from __future__ import annotations

import re

import pytest

from pyracoon.kernellab import KernelLab
from pyracoon.memolab import MEMO_HOST1, MEMO_HOST2, automatic_keying, manual_keying

SECRET_E = "0x54686973206973206120536563726574204b657920212121"  # "This is a Secret Key !!!"
SECRET_A = "0x54686973206973206120536563726574204b6579"  # "This is a Secret Key"


def explain(o) -> str:
    logs = "\n".join(f"--- {k}\n{v[-4000:]}" for k, v in o.logs.items())
    return "\n".join(o.steps) + "\n" + "\n".join(o.tcpdump[-30:]) + "\n" + logs


def test_memo_manual_keying_stops_one_sided_traffic_then_carries_it_as_esp(lab: KernelLab):
    o = manual_keying(lab)
    assert o.ok, explain(o)
    assert "with only host1 configured: fails" in o.steps[1]
    spis = {m for line in o.tcpdump for m in re.findall(r"ESP\(spi=(0x[0-9a-f]+)", line)}
    assert spis == {"0x00000111", "0x00000112"}
    assert any(f"{MEMO_HOST1} > {MEMO_HOST2}: ESP(spi=0x00000111,seq=0x1)" in x for x in o.tcpdump)
    for host in ("host1", "host2"):
        sas = {(s.src, s.dst, s.spi, s.enc, s.auth) for s in o.states[host]}
        assert sas == {
            (MEMO_HOST1, MEMO_HOST2, "0x00000111", SECRET_E, SECRET_A),
            (MEMO_HOST2, MEMO_HOST1, "0x00000112", SECRET_E, SECRET_A),
        }
        d = o.setkey_d[host]
        assert "spi=273(0x00000111)" in d and "spi=274(0x00000112)" in d
        assert "E: 3des-cbc  54686973 20697320 61205365 63726574 204b6579 20212121" in d
        assert "A: hmac-sha1  54686973 20697320 61205365 63726574 204b6579" in d
        # the templates arrived: the kernel reports them back in the memo's own words
        dp = o.setkey_dp[host]
        assert dp.count("esp/transport//require") >= 2, dp
        assert "out prio def ipsec" in dp and "in prio def ipsec" in dp, dp


@pytest.mark.parametrize("family", [6, 4])
def test_memo_automatic_keying_turns_traffic_into_esp(lab: KernelLab, family: int):
    o = automatic_keying(lab, family=family)
    assert o.ok, explain(o)
    # level use: the first packets went out in the clear, then the traffic is ESP
    kinds = [
        "esp" if "ESP(spi=" in line else "clear"
        for line in o.tcpdump
        if "echo" in line or "ESP(" in line
    ]
    assert kinds and kinds[0] == "clear" and kinds[-1] == "esp", explain(o)
    # the same SAs crosswise in both kernels, with the memo's 3-minute lifetime
    h1 = o.states["host1"]
    # one pair, or two: with "use" the echo replies make host2 ask too, and when both
    # ACQUIREs come in time both daemons initiate (as two racoons do)
    assert len(h1) in (2, 4), h1
    for sa in h1:
        assert sa.hard_add == 180, sa
        assert sa.soft_add is not None and 0 < sa.soft_add < 180
    for host in ("host1", "host2"):
        d = o.setkey_d[host]
        for sa in h1:
            assert f"({sa.spi})" in d, d
        assert "E: 3des-cbc" in d and "A: hmac-sha1" in d
