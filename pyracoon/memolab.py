"""The memo on a real kernel: its manual and automatic keying between two hosts in the kernel lab.

:mod:`pyracoon.kernellab` gives a real Linux kernel (PF_KEY, XFRM, ESP) with hosts in network
namespaces. This module sets the memo's two hosts up there -- its own IPv6 addresses
(``2001:240:7:101:260:1dff:fef2:7648`` and ``2001:240:7:100::1:6``, on one link; nothing leaves
the lab) or two IPv4 ones -- and runs its two procedures unchanged:

* **Manual keying** (section 2): ``pysetkey -f`` of each host's file, ping, ``tcpdump``.
* **Automatic keying** (sections 4-9): a CA and host certificates with the hashed CA directory in
  each host's ``/usr/local/etc/racoon/cert``, the memo's racoon.conf at
  ``/usr/local/etc/racoon/racoon.conf``, the ``::/0 use`` SPD loaded with ``pysetkey -f``, and
  ``pyracoon -f /usr/local/etc/racoon/racoon.conf``. The first packets go out in the clear while
  the daemons negotiate, then the traffic is ESP.

Each host's daemon sees its own ``/usr/local/etc`` and ``/run``: the command runs in a mount
namespace of its own (``ip netns exec`` makes one) in which the host's directory is bind-mounted
there, so the memo's absolute paths work as written and the two daemons share nothing.

The kernel-lab tests and ``pyracoon-demo --real-kernel`` share this code.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pyracoon.kernellab import Host, KernelLab, Proc
from pyracoon.lab import Issued, install_certificates, issue

MEMO_HOST1 = "2001:240:7:101:260:1dff:fef2:7648"
MEMO_HOST2 = "2001:240:7:100::1:6"
V4_HOST1 = "10.1.0.1"
V4_HOST2 = "10.1.0.2"
ETC = "/usr/local/etc"
RACOON_DIR = f"{ETC}/racoon"
RACOON_CONF = f"{RACOON_DIR}/racoon.conf"

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def conf_file(name: str) -> Path:
    """A file of the repository's ``conf/`` (the memo's configurations)."""
    return CONF_DIR / name


def require_policies(me: str, peer: str) -> str:
    """Section 2's ``require`` SPD between two hosts (no SAs: racoon is to make them)."""
    return (
        "spdflush;\n"
        f"spdadd {me} {peer} any -P out ipsec esp/transport//require;\n"
        f"spdadd {peer} {me} any -P in ipsec esp/transport//require;\n"
        "flush;\n"
    )


def v4_policies() -> str:
    """Section 7's ``use`` SPD, written for IPv4 (the memo's file is ``::/0``)."""
    return (
        "spdflush;\n"
        "spdadd 0.0.0.0/0 0.0.0.0/0 any -P out ipsec esp/transport//use;\n"
        "spdadd 0.0.0.0/0 0.0.0.0/0 any -P in ipsec esp/transport//use;\n"
        "flush;\n"
    )


@dataclass
class MemoHost:
    """One of the memo's hosts in the lab: its namespace, address and private directories."""

    host: Host
    address: str
    dir: Path
    daemon: Proc | None = None
    kernel: str = "pfkey"
    """The backend this host's pysetkey and pyracoon use (``--kernel``)."""

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def etc(self) -> Path:
        """What this host sees as ``/usr/local/etc``."""
        return self.dir / "etc"

    @property
    def log(self) -> Path:
        return self.dir / "racoon.log"

    def private(self, cmd: str) -> str:
        """``cmd`` with this host's ``/usr/local/etc`` and ``/run`` in place (its own mounts)."""
        run = self.dir / "run"
        return (
            f"mount --bind {shlex.quote(str(self.etc))} {ETC} && "
            f"mount --bind {shlex.quote(str(run))} /run && mkdir -p /run/racoon && exec {cmd}"
        )

    def setkey(self, *args: str, stdin: str | None = None, kernel: str = "pfkey") -> str:
        r = self.host.run(["pysetkey", "--kernel", kernel, *args], input=stdin)
        return r.stdout + r.stderr

    def start_daemon(self, *extra: str, kernel: str = "pfkey") -> Proc:
        cmd = shlex.join(
            ["pyracoon", "-F", "-f", RACOON_CONF, "-l", str(self.log), "--kernel", kernel, *extra]
        )
        self.daemon = self.host.spawn(self.private(cmd), name=f"pyracoon-{self.name}")
        return self.daemon

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, timeout: float = 30, count: int = 1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(needle) >= count:
                return True
            if self.daemon is not None and not self.daemon.running():
                return self.log_text().count(needle) >= count
            time.sleep(0.1)
        return False


def memo_hosts(lab: KernelLab, family: int = 6) -> tuple[MemoHost, MemoHost]:
    """The memo's two hosts: its IPv6 addresses (one /48, so one link), or 10.1.0.1/.2."""
    if family == 6:
        addrs = ((MEMO_HOST1, f"{MEMO_HOST1}/48"), (MEMO_HOST2, f"{MEMO_HOST2}/48"))
    else:
        addrs = ((V4_HOST1, f"{V4_HOST1}/24"), (V4_HOST2, f"{V4_HOST2}/24"))
    out = []
    for name, (addr, cidr) in zip(("host1", "host2"), addrs, strict=True):
        d = lab.dir / name
        for sub in ("etc/racoon/cert", "run"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        out.append(MemoHost(lab.add_host(name, cidr), addr, d))
    pin_neighbours(out[0], out[1])
    return out[0], out[1]


def pin_neighbours(a: MemoHost, b: MemoHost) -> None:
    """Permanent neighbour entries for each other's address.

    Section 2's ``require`` pair between the two global IPv6 addresses also covers their
    unicast neighbour discovery, which then needs the very SAs it precedes: without this an
    IPv6 host could not even reach its peer's IKE port. (IPv4's ARP is not IP.)
    """
    mac = {h.name: h.host.run("cat /sys/class/net/eth0/address").stdout.strip() for h in (a, b)}
    for me, other in ((a, b), (b, a)):
        me.host.run(
            f"ip neigh replace {other.address} lladdr {mac[other.name]} dev eth0 nud permanent"
        )


def install_memo_racoon(h: MemoHost, ca: Issued, racoon_conf: str) -> None:
    """Section 4's certificates and section 5's racoon.conf, in the host's /usr/local/etc/racoon."""
    racoon = h.etc / "racoon"
    install_certificates(racoon / "cert", ca, issue(h.name, ca, san=[h.address]))
    (racoon / "racoon.conf").write_text(racoon_conf)
    backupsa = racoon / "backupsa"  # section 5: touch backupsa; chmod 600 backupsa
    backupsa.touch()
    backupsa.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# what happened on the wire and in the kernels


ESP_LINE = re.compile(r"ESP\(spi=(0x[0-9a-f]+),seq=(0x[0-9a-f]+)\)")


@dataclass
class Capture:
    """A ``tcpdump -n -l -p`` running on one host's interface."""

    proc: Proc

    def lines(self) -> list[str]:
        return [
            line
            for line in self.proc.output().splitlines()
            if " > " in line and not line.startswith(("tcpdump:", "listening"))
        ]

    def esp_spis(self) -> set[str]:
        return {m.group(1) for line in self.lines() if (m := ESP_LINE.search(line))}


def capture(h: MemoHost, expr: str = "") -> Capture:
    proc = h.host.spawn(f"exec tcpdump -i eth0 -n -l -p {expr}", name=f"tcpdump-{h.name}")
    proc.wait_output("listening on", 15)
    return Capture(proc)


XFRM_STATE = re.compile(
    r"src (?P<src>\S+) dst (?P<dst>\S+)\s+proto esp spi (?P<spi>0x[0-9a-f]+)", re.MULTILINE
)


@dataclass
class XfrmSA:
    """One ESP SA as ``ip -s xfrm state`` shows it (the kernel's own view, not ours)."""

    src: str
    dst: str
    spi: str
    enc: str
    auth: str
    hard_add: int | None
    soft_add: int | None


def xfrm_states(h: MemoHost) -> list[XfrmSA]:
    """The host's ESP SAs, read with iproute2 from XFRM (independent of our codecs).

    Linux also lists the larval states it makes for each ACQUIRE (SPI 0, 30 s): left out.
    """
    text = h.host.run("ip -s xfrm state").stdout
    out = []
    for block in re.split(r"\n(?=src )", text.strip()):
        m = XFRM_STATE.search(block)
        if not m or int(m["spi"], 16) == 0:
            # SPI 0: the larval state the kernel makes while an ACQUIRE waits for a key
            # manager -- no keys, no traffic; the "::/0 use" SPD leaves some for neighbour
            # discovery, which is never negotiated
            continue
        enc = re.search(r"enc \S+ (0x[0-9a-f]+)", block)
        auth = re.search(r"auth(?:-trunc)? \S+ (0x[0-9a-f]+)", block)
        hard = re.search(r"expire add: soft (\d+)\(sec\), hard (\d+)\(sec\)", block)
        out.append(
            XfrmSA(
                m["src"],
                m["dst"],
                m["spi"],
                enc.group(1) if enc else "",
                auth.group(1) if auth else "",
                int(hard.group(2)) if hard else None,
                int(hard.group(1)) if hard else None,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# the two procedures


@dataclass
class Outcome:
    """What one run of a procedure showed; ``ok`` says whether it proved what it should."""

    ok: bool = False
    steps: list[str] = field(default_factory=list)
    tcpdump: list[str] = field(default_factory=list)
    setkey_d: dict[str, str] = field(default_factory=dict)
    setkey_dp: dict[str, str] = field(default_factory=dict)
    states: dict[str, list[XfrmSA]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def step(self, text: str) -> None:
        self.steps.append(text)


def ping(h: MemoHost, dst: str, count: int = 1, wait: float = 1, interval: float = 0.2) -> bool:
    return h.host.run(f"ping -c {count} -i {interval} -W {wait:g} {dst}", timeout=60).ok


def manual_keying(lab: KernelLab, family: int = 6, kernel: str = "pfkey") -> Outcome:
    """Section 2: host 1's file alone stops traffic; with host 2's too, it flows as ESP.

    ``kernel`` is what ``pysetkey --kernel`` loads the files and reads them back through.
    """
    out = Outcome()
    h1, h2 = memo_hosts(lab, family)
    files: tuple[str, ...]
    if family == 6:
        files = (
            conf_file("ipsec.conf.host1").read_text(),
            conf_file("ipsec.conf.host2").read_text(),
        )
    else:
        files = tuple(
            conf_file(n).read_text().replace(MEMO_HOST1, V4_HOST1).replace(MEMO_HOST2, V4_HOST2)
            for n in ("ipsec.conf.host1", "ipsec.conf.host2")
        )
    cap = capture(h2)
    loaded = h1.setkey("-c", stdin=files[0], kernel=kernel).strip()
    out.step(f"host1: pysetkey -f ipsec.conf.host1 -> {loaded!r}")
    one_sided = ping(h1, h2.address, count=2)
    out.step(f"ping host1 -> host2 with only host1 configured: {'ok' if one_sided else 'fails'}")
    loaded = h2.setkey("-c", stdin=files[1], kernel=kernel).strip()
    out.step(f"host2: pysetkey -f ipsec.conf.host2 -> {loaded!r}")
    # The policies cover every protocol, neighbour discovery too: the neighbour entry that failed
    # while host 2 dropped host 1's ESP needs a moment to recover. Traffic "flows again" when a
    # ping of ten gets an answer; then three in a row must all pass.
    recovered = ping(h1, h2.address, count=10, interval=0.5)
    both = recovered and ping(h1, h2.address, count=3)
    out.step(f"ping host1 -> host2 with both configured: {'ok' if both else 'fails'}")
    time.sleep(0.3)
    cap.proc.stop()
    out.tcpdump = cap.lines()
    for h in (h1, h2):
        out.setkey_d[h.name] = h.setkey("-D", kernel=kernel)
        out.setkey_dp[h.name] = h.setkey("-DP", kernel=kernel)
        out.states[h.name] = xfrm_states(h)
    out.ok = (not one_sided) and both and {"0x00000111", "0x00000112"} <= cap.esp_spis()
    return out


#: How long start_daemons waits for each daemon's "used as isakmp port" line.
START_TIMEOUT = 90


def start_daemons(
    lab: KernelLab,
    out: Outcome,
    family: int = 6,
    racoon_conf: str | None = None,
    setkey_file: str | Callable[[str, str], str] | None = None,
    kernel: str | tuple[str, str] = "pfkey",
) -> tuple[MemoHost, MemoHost] | None:
    """Sections 4-8 on both hosts: certificates, racoon.conf, the SPD, ``pyracoon`` started.

    ``setkey_file`` is one file for both hosts, or a function of (this host's address, the
    peer's) for per-host policies. ``kernel`` is the backend of both hosts' pysetkey and daemon,
    or one for each (host1's, host2's), as in XFRM on one host and PF_KEY on the other. None
    (with the reason in ``out.steps``) when a daemon did not come up.
    """
    h1, h2 = memo_hosts(lab, family)
    conf = racoon_conf if racoon_conf is not None else conf_file("racoon.conf").read_text()
    spd = setkey_file
    if spd is None:
        spd = conf_file("ipsec.conf").read_text() if family == 6 else v4_policies()
    ca = issue("pyracoon lab CA")
    kernels = (kernel, kernel) if isinstance(kernel, str) else kernel
    for h, peer, k in ((h1, h2, kernels[0]), (h2, h1, kernels[1])):
        h.kernel = k
        install_memo_racoon(h, ca, conf)
        text = spd(h.address, peer.address) if callable(spd) else spd
        loaded = h.setkey("-c", stdin=text, kernel=k).strip()
        out.step(f"{h.name}: pysetkey --kernel {k} -f ipsec.conf -> {loaded!r}")
    for h in (h1, h2):
        h.start_daemon(kernel=h.kernel)
    started = time.monotonic()
    for h in (h1, h2):
        # a daemon listens within a second or two; a lab starved by a loaded host has been seen
        # to need 30 s, so the limit is generous and the step says how long it took
        if not h.wait_log("used as isakmp port", START_TIMEOUT):
            assert h.daemon is not None
            state = "running" if h.daemon.running() else f"exited {h.daemon.wait(1)}"
            out.step(
                f"{h.name}: pyracoon did not start within {START_TIMEOUT} s ({state});"
                f" its output: {h.daemon.output()[-800:]!r}"
            )
            stop_daemons((h1, h2), out)
            return None
    out.step(f"both daemons listening after {time.monotonic() - started:.1f} s")
    return h1, h2


def stop_daemons(hosts: tuple[MemoHost, MemoHost], out: Outcome) -> None:
    """SIGTERM both daemons and keep their logs in ``out``."""
    for h in hosts:
        if h.daemon is not None:
            h.daemon.stop()
        out.logs[h.name] = h.log_text()


def automatic_keying(
    lab: KernelLab,
    family: int = 6,
    racoon_conf: str | None = None,
    setkey_file: str | None = None,
    kernel: str | tuple[str, str] = "pfkey",
    pings: int = 15,
) -> Outcome:
    """Sections 4-9: certificates, racoon.conf, the ``use`` SPD, two daemons, then ping."""
    out = Outcome()
    hosts = start_daemons(lab, out, family, racoon_conf, setkey_file, kernel)
    if hosts is None:
        return out
    h1, h2 = hosts
    try:
        cap = capture(h2)
        first = ping(h1, h2.address, count=pings, interval=0.2)
        out.step(f"ping -c {pings} host1 -> host2: {'ok' if first else 'lost packets'}")
        established = all(h.wait_log("IPsec-SA established", 30, count=2) for h in hosts)
        out.step(f"both daemons: IPsec-SA established in each direction: {established}")
        again = ping(h1, h2.address, count=3)
        for h in hosts:
            out.setkey_d[h.name] = h.setkey("-D", kernel=h.kernel)
            out.setkey_dp[h.name] = h.setkey("-DP", kernel=h.kernel)
            out.states[h.name] = xfrm_states(h)
        # IKE itself must stay outside the ::/0 policy now that ESP SAs exist for the pair:
        # an ISAKMP Delete (racoonctl delete-sa isakmp) goes out as UDP 500, not inside ESP.
        before = len(cap.lines())
        fam = "inet6" if family == 6 else "inet"
        h1.host.run(h1.private(f"pyracoonctl delete-sa isakmp {fam} {h1.address} {h2.address}"))
        time.sleep(1)
        cap.proc.stop()
        out.tcpdump = cap.lines()
        ike_clear = any(
            ".500 > " in line and "inf" in line and "ESP(" not in line
            for line in out.tcpdump[before:]
        )
        out.step(f"an ISAKMP Delete after the SAs exist leaves as plain UDP 500: {ike_clear}")
        out.ok = (
            established and again and bool(cap.esp_spis()) and crosswise(out.states) and ike_clear
        )
        return out
    finally:
        stop_daemons(hosts, out)


def crosswise(states: dict[str, list[XfrmSA]]) -> bool:
    """Both kernels hold the same ESP SAs (SPI, endpoints, keys), one in each direction."""
    views = [sorted((s.src, s.dst, s.spi, s.enc, s.auth) for s in v) for v in states.values()]
    return len(views) == 2 and views[0] == views[1] and len(views[0]) >= 2


# ---------------------------------------------------------------------------------------------
# pyracoon-demo --real-kernel


def run_real_demo(
    out: TextIO,
    *,
    family: int = 6,
    racoon_conf: Path | None = None,
    setkey_file: Path | None = None,
    kernel: str = "pfkey",
    keep: Path | None = None,
) -> int:
    """Proof 2 in a fresh lab, printed as the memo's section 9 shows it; 0 when it worked."""
    from pyracoon.kernellab import LabError, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"pyracoon-demo: {reason}", file=out)
        return 2
    conf = racoon_conf.read_text() if racoon_conf else None
    spd = setkey_file.read_text() if setkey_file else None
    try:
        with KernelLab(workdir=keep) as lab:
            print(
                f"# a real Linux {lab.run('uname -r').stdout.strip()} kernel (user-mode-linux)"
                f"; hosts host1 and host2 on one link",
                file=out,
            )
            o = automatic_keying(
                lab, family=family, racoon_conf=conf, setkey_file=spd, kernel=kernel
            )
    except LabError as e:
        print(f"pyracoon-demo: the kernel lab failed: {e}", file=out)
        return 1
    for s in o.steps:
        print(f"# {s}", file=out)
    print(
        "\n# tcpdump -i eth0 -n -l -p on host2 (the first packets in the clear, then ESP)", file=out
    )
    for line in o.tcpdump:
        if "ICMP6, echo" in line or "ICMP echo" in line or "ESP(" in line or ".500 >" in line:
            print(line, file=out)
    for name, text in o.setkey_d.items():
        print(f"\n# {name}: pysetkey -D", file=out)
        print(text, end="", file=out)
    for name, text in o.logs.items():
        print(f"\n# {name}: the established lines of its log", file=out)
        for line in text.splitlines():
            if "established" in line or "ERROR" in line:
                print(line, file=out)
    if keep:
        print(f"\n# the hosts' files and logs are kept in {keep}", file=out)
    print(f"\n# {'ESP between the two hosts: OK' if o.ok else 'FAILED'}", file=out)
    return 0 if o.ok else 1
