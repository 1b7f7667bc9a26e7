"""strongSwan's charon, with its own kernel-netlink, against pyracoon over ``--kernel xfrm``.

Both ends use XFRM for real here: charon through its kernel-netlink plugin, pyracoon through
our backend, each on its own host of the kernel lab, with ESP on the wire. charon initiates in
one test and responds in the other; in both the two kernels must end up with the same SA pair
(SPIs, keys) and the traffic must flow as ESP.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from pyracoon.kernellab import Host, KernelLab, Proc
from pyracoon.memolab import Capture

CHARON = Path("/usr/lib/ipsec/charon")
PYR, SW = "10.1.0.1", "10.1.0.2"
PSK = "a secret both sides share"


def xfrm_pairs(h: Host) -> list[tuple[str, str, str, str, str]]:
    """(src, dst, spi, enc key, auth key) of each ESP SA, as iproute2 reads them."""
    text = h.run("ip xfrm state").stdout
    out = []
    for block in re.split(r"\n(?=src )", text.strip()):
        m = re.search(r"src (\S+) dst (\S+)\s+proto esp spi (0x[0-9a-f]+)", block)
        if not m:
            continue
        enc = re.search(r"enc \S+ (0x[0-9a-f]+)", block)
        auth = re.search(r"auth(?:-trunc)? \S+ (0x[0-9a-f]+)", block)
        out.append((m[1], m[2], m[3], enc[1] if enc else "", auth[1] if auth else ""))
    return sorted(out)


class Charon:
    """charon in a lab host: its strongswan.conf, swanctl.conf and vici socket in ``state``."""

    def __init__(self, host: Host, state: Path, *, initiator: bool) -> None:
        self.host, self.state, self.initiator = host, state, initiator
        self.proc: Proc | None = None
        for sub in ("run", "swanctl"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        load = (
            "random nonce openssl pem pkcs1 x509 pubkey sha1 sha2 md5 hmac gmp "
            "kernel-netlink socket-default vici"
        )
        (state / "strongswan.conf").write_text(f"""charon {{
  load_modular = no
  load = {load}
  install_routes = no
  install_virtual_ip = no
  plugins {{
    vici {{ socket = unix://{state / "charon.vici"} }}
  }}
  filelog {{
    main {{
      path = {state / "charon.log"}
      default = 1
      ike = 2
      chd = 2
      knl = 2
      flush_line = yes
    }}
  }}
  syslog {{
  }}
}}
""")
        (state / "swanctl" / "swanctl.conf").write_text(f"""connections {{
  lab {{
    version = 1
    local_addrs = {SW}
    remote_addrs = {PYR if initiator else "%any"}
    proposals = 3des-sha1-modp1024
    dpd_delay = 0
    local {{
      auth = psk
      id = {SW}
    }}
    remote {{
      auth = psk
      id = {PYR if initiator else "%any"}
    }}
    children {{
      child {{
        mode = transport
        esp_proposals = 3des-sha1-modp1024,3des-sha1
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-lab {{
    secret = "{PSK}"
  }}
}}
""")

    def env(self) -> str:
        return (
            f"STRONGSWAN_CONF={shlex.quote(str(self.state / 'strongswan.conf'))} "
            f"SWANCTL_DIR={shlex.quote(str(self.state / 'swanctl'))}"
        )

    def swanctl(self, *args: str) -> str:
        uri = f"unix://{self.state / 'charon.vici'}"
        cmd = f"env {self.env()} swanctl {shlex.join(args)} --uri {uri}"
        r = self.host.run(cmd, timeout=60)
        return r.stdout + r.stderr

    def start(self) -> None:
        run = shlex.quote(str(self.state / "run"))
        self.proc = self.host.spawn(
            f"mount --bind {run} /run && exec env {self.env()} {CHARON}", name="charon"
        )
        deadline = time.monotonic() + 20
        while not (self.state / "charon.vici").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        out = self.swanctl("--load-all")
        assert "loaded connection 'lab'" in out, out + self.log()

    def log(self) -> str:
        try:
            return (self.state / "charon.log").read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


class Pyracoon:
    """pyracoon --kernel xfrm in a lab host, with a PSK for charon and a ``require`` SPD."""

    def __init__(self, host: Host, d: Path) -> None:
        self.host, self.dir = host, d
        d.mkdir(parents=True, exist_ok=True)
        psk = d / "psk.txt"
        psk.write_text(f"{SW}\t{PSK}\n")
        psk.chmod(0o600)
        self.conf = d / "racoon.conf"
        self.conf.write_text(
            f'path pre_shared_key "{psk}";\n'
            f'path pidfile "{d / "racoon.pid"}";\n'
            f"listen {{ isakmp {PYR} [500]; adminsock disabled; }}\n"
            f"remote {SW} {{\n"
            "    exchange_mode main;\n"
            f"    my_identifier address {PYR};\n"
            "    proposal { encryption_algorithm 3des; hash_algorithm sha1;\n"
            "               authentication_method pre_shared_key; dh_group 2; }\n"
            "}\n"
            "sainfo anonymous {\n"
            "    pfs_group 2;\n"
            "    encryption_algorithm 3des; authentication_algorithm hmac_sha1;\n"
            "    compression_algorithm deflate;\n"
            "    lifetime time 2 hour;\n"  # charon proposes 1 h plus its rekey margin
            "}\n"
        )
        self.log_path = d / "racoon.log"
        # IKE itself must not need ESP: racoon-era bypass entries for UDP 500, at a higher
        # priority than the require pair (charon's own sockets bypass by socket policy)
        spd = (
            "spdflush;\nflush;\n"
            f"spdadd {PYR}[500] {SW}[500] udp -P out prio high none;\n"
            f"spdadd {SW}[500] {PYR}[500] udp -P in prio high none;\n"
            f"spdadd {PYR} {SW} any -P out ipsec esp/transport//require;\n"
            f"spdadd {SW} {PYR} any -P in ipsec esp/transport//require;\n"
        )
        r = host.run(["pysetkey", "--kernel", "xfrm", "-c"], input=spd)
        assert r.ok and not r.stdout, r
        self.proc: Proc | None = None

    def start(self) -> None:
        cmd = ["pyracoon", "-F", "-f", str(self.conf), "-l", str(self.log_path)]
        self.proc = self.host.spawn(shlex.join([*cmd, "--kernel", "xfrm"]), name="pyracoon")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "used as isakmp port" not in self.log():
            time.sleep(0.2)
        assert "kernel: xfrm (--kernel xfrm)" in self.log(), self.log()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def peers(lab: KernelLab, initiator: bool) -> tuple[Pyracoon, Charon]:
    if not CHARON.exists() or shutil.which("swanctl") is None:
        from labtest import lab_unavailable

        lab_unavailable("strongSwan's charon and swanctl are not installed")
    p = Pyracoon(lab.add_host("pyr", f"{PYR}/24"), lab.dir / "pyr")
    c = Charon(lab.add_host("sw", f"{SW}/24"), lab.dir / "sw", initiator=initiator)
    c.start()
    p.start()
    return p, c


def why(p: Pyracoon, c: Charon, *extra: str) -> str:
    return "\n".join([*extra, "--- pyracoon", p.log()[-6000:], "--- charon", c.log()])


def esp_proof(p: Pyracoon, c: Charon, pinger: Host, target: str) -> None:
    cap = Capture(c.host.spawn("exec tcpdump -i eth0 -n -l -p esp", name="tcpdump"))
    cap.proc.wait_output("listening on", 15)
    assert pinger.run(f"ping -c 3 -i 0.3 -W 2 {target}", timeout=30).ok, why(p, c)
    time.sleep(0.3)
    cap.proc.stop()
    spis = cap.esp_spis()
    ours, theirs = xfrm_pairs(p.host), xfrm_pairs(c.host)
    assert ours == theirs and len(ours) >= 2, why(p, c, str(ours), str(theirs))
    assert spis and spis <= {spi for _, _, spi, _, _ in ours}, (spis, ours)
    assert {(s, d) for s, d, *_ in ours} == {(PYR, SW), (SW, PYR)}


@pytest.mark.parametrize("initiator", ["charon", "pyracoon"])
def test_charon_with_kernel_netlink_and_pyracoon_over_xfrm(lab: KernelLab, initiator: str):
    p, c = peers(lab, initiator == "charon")
    try:
        if initiator == "charon":
            out = c.swanctl("--initiate", "--child", "child", "--timeout", "30")
            assert "initiate completed successfully" in out, why(p, c, out)
            esp_proof(p, c, c.host, PYR)
        else:
            # require: the first packets only start the negotiation (the ACQUIRE)
            for _ in range(20):
                if p.host.run(f"ping -c 1 -W 1 {SW}", timeout=10).ok:
                    break
            esp_proof(p, c, p.host, SW)
        assert "IPsec-SA established" in p.log(), why(p, c)
        assert "ERROR" not in p.log(), why(p, c)
    finally:
        for proc in (p.proc, c.proc):
            if proc is not None:
                proc.stop()
