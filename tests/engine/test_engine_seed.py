"""The seed memo's configuration (conf/racoon.conf and its sainfo variants), run by two engines.

Each host gets the memo's file with ``path certificate`` pointed at a temporary directory that
holds what the memo's section 4 puts there: the CA certificate under its hash link, and
``host_cert.pem`` / ``host_priv.pem``.  The SPD is the memo's section 7: ``::/0 ::/0 any``,
transport ESP at level ``use``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from certs import build_pki
from harness import Host, Net

from pyracoon.kernel.sadb import Direction, Level, SaType

REPO = Path(__file__).resolve().parents[2]
NA12 = "2001:240:7:101:290:99ff:fe2a:1139"
CANBE = "2001:240:7:101:280:4cff:fe20:5450"


def host_conf(tmp_path: Path, name: str, address: str, conf_file: str, swap: bool = False) -> str:
    d = build_pki(tmp_path / name, {name: address})
    shutil.move(d / f"{name}.pem", d / "host_cert.pem")
    shutil.move(d / f"{name}.key", d / "host_priv.pem")
    text = (REPO / "conf" / conf_file).read_text()
    text = text.replace('"/usr/local/etc/racoon/cert"', f'"{d}"')
    if swap:  # the mirror of a per-peer sainfo, as the other host would write it
        text = text.replace(NA12, "@").replace(CANBE, NA12).replace("@", CANBE)
    return text


def seed_spd(h: Host) -> None:
    h.spdadd("::/0", "::/0", Direction.OUTBOUND, level=Level.USE)
    h.spdadd("::/0", "::/0", Direction.INBOUND, level=Level.USE)


def run(tmp_path: Path, conf_file: str) -> tuple[Host, Host]:
    net = Net()
    a = net.host("na12", NA12, host_conf(tmp_path, "na12", NA12, conf_file), {})
    b = net.host("canbe", CANBE, host_conf(tmp_path, "canbe", CANBE, conf_file, swap=True), {})
    seed_spd(a)
    seed_spd(b)
    net.pump()
    verdict = a.kernel.output(NA12, CANBE, 6)
    assert verdict.verdict.name == "CLEAR"  # level use: the first packets go out in the clear
    net.pump()
    return a, b


def esp(h: Host) -> list:
    return [s for s in h.sas() if s.satype == SaType.ESP]


@pytest.mark.skipif(not (REPO / "conf" / "racoon.conf").exists(), reason="no seed racoon.conf")
def test_seed_racoon_conf(tmp_path: Path) -> None:
    a, b = run(tmp_path, "racoon.conf")
    assert len(esp(a)) == 2 and len(esp(b)) == 2, a.log_text() + "\n" + b.log_text()
    for sa in esp(a):
        assert sa.encrypt == 3 and sa.auth == 3  # 3des-cbc, hmac-sha1
        assert sa.hard.addtime == 180 and sa.soft.addtime == 144  # lifetime time 3 min
    assert a.has_log(f"ISAKMP-SA established {NA12}[500]-{CANBE}[500] spi:")
    assert a.kernel.output(NA12, CANBE, 6).verdict.name == "PROTECTED"


@pytest.mark.parametrize(
    "conf_file,lifetime",
    [("racoon.conf.sainfo-blowfish", 28800), ("racoon.conf.sainfo-lifetime", 30)],
)
def test_seed_per_peer_sainfo(tmp_path: Path, conf_file: str, lifetime: int) -> None:
    if not (REPO / "conf" / conf_file).exists():
        pytest.skip(f"no conf/{conf_file}")
    a, b = run(tmp_path, conf_file)
    assert len(esp(a)) == 2 and len(esp(b)) == 2, a.log_text() + "\n" + b.log_text()
    for sa in esp(a) + esp(b):
        assert sa.encrypt == 7 and sa.auth == 2  # blowfish-cbc, hmac-md5: the per-peer sainfo
        assert sa.hard.addtime == lifetime
