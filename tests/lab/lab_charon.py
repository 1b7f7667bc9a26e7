"""strongSwan's charon with its own kernel as pyracoon's peer in the kernel lab.

The interop suite (``tests/interop``) runs charon on this machine's kernel, which has no ESP, so
there charon gets a no-op kernel plugin and the proof stops at the keys both sides derived. In
the kernel lab the kernel is real: charon uses its ordinary ``kernel-netlink`` (XFRM) and
installs its SAs and policies itself, while pyracoon installs its own through PF_KEY
(``--kernel pfkey``) in the other namespace. What the two kernels then do with ESP is the proof:
pings both ways, ESP on the wire with the SPIs both kernels hold, and the same SAs (SPIs, keys)
crosswise in ``ip -s xfrm state``.

Reused rather than copied: charon's configuration, start-up, vici and log reading come from
``tests/interop/interop_charon.py`` (only *where* its commands run differs: :class:`LabCharon`
sends them into the lab), the scenario, the racoon.conf sections and the racoon-style SPD from
``tests/interop/interop_lab.py``, and the lab's hosts, certificates, capture and XFRM reading
from :mod:`pyracoon.memolab`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# tests/interop is not a package; its helpers are plain modules beside its tests, so the lab
# reaches them the way pytest itself imports them there: by that directory on sys.path.
_INTEROP = Path(__file__).resolve().parent.parent / "interop"
if str(_INTEROP) not in sys.path:
    sys.path.insert(0, str(_INTEROP))

from interop_charon import CHARON, PLUGINDIR, Charon  # noqa: E402
from interop_lab import PSK, Scenario, racoon_policies, racoon_sections  # noqa: E402

from pyracoon.kernellab import Host, KernelLab, Proc  # noqa: E402
from pyracoon.lab import issue  # noqa: E402
from pyracoon.memolab import (  # noqa: E402
    RACOON_DIR,
    MemoHost,
    XfrmSA,
    capture,
    install_memo_racoon,
    memo_hosts,
    xfrm_states,
)

#: Plugins of charon's load list that are not in ``libstrongswan`` itself, and their packages.
#: openssl is the one that gives charon 3DES and AES in CBC mode (``aes`` alone has no 3DES).
PLUGIN_PACKAGES = {
    "openssl": "libstrongswan-standard-plugins",
    "socket-default": "strongswan-libcharon",
    "vici": "strongswan-swanctl",
    "kernel-netlink": "libstrongswan",
}


def charon_unavailable() -> str | None:
    """Why charon cannot be pyracoon's peer here (None when it can), with the package to install."""
    if not CHARON.exists():
        return f"{CHARON} missing (apt-get install strongswan-charon)"
    if shutil.which("swanctl") is None:
        return "swanctl missing (apt-get install strongswan-swanctl)"
    for plugin, package in PLUGIN_PACKAGES.items():
        so = PLUGINDIR / f"libstrongswan-{plugin}.so"
        if not so.exists():
            return f"charon's {plugin} plugin is missing: no {so} (apt-get install {package})"
    if shutil.which("tcpdump") is None:
        return "tcpdump missing (apt-get install tcpdump)"
    return None


@dataclass
class LabCharon(Charon):
    """:class:`Charon`, its commands run in a namespace of the lab (``lab_host``).

    The state directory is on the host's file system, which the lab kernel shares (hostfs), so
    the files written here and the vici socket charon makes there are the same paths on both
    sides. No fake kernel: ``configure`` then loads kernel-netlink as charon's kernel backend.
    """

    lab_host: Host | None = None
    lab_proc: Proc | None = None

    @classmethod
    def on(cls, host: MemoHost, peer: str) -> LabCharon:
        return cls(host.name, host.dir / "charon", host.address, peer, lab_host=host.host)

    def _host(self) -> Host:
        assert self.lab_host is not None, "a LabCharon needs its lab host"
        return self.lab_host

    def run_in_ns(
        self, argv: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        r = self._host().run(argv, env=env, timeout=timeout)
        return subprocess.CompletedProcess(argv, -1 if r.rc is None else r.rc, r.stdout, r.stderr)

    def launch(self, shell: str, env: dict[str, str]) -> None:
        self.lab_proc = self._host().spawn(shell, env=env, name="charon")

    def running(self) -> bool:
        return self.lab_proc is not None and self.lab_proc.running()

    def stdout_text(self) -> str:
        return self.lab_proc.output() if self.lab_proc is not None else ""

    def stop(self) -> None:
        if self.lab_proc is not None:
            self.lab_proc.stop()


# ---------------------------------------------------------------------------------------------
# one negotiation and what it showed

WIRE_ESP = re.compile(r"IP6? (\S+) > (\S+): ESP\(spi=(0x[0-9a-f]+),seq=0x[0-9a-f]+\)")
CHILD_LINE = re.compile(r"CHILD_SA \S+ established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o")
LIST_SAS_SPIS = re.compile(r"\bin\s+([0-9a-f]{8}),.*\n\s+out\s+([0-9a-f]{8}),")


def racoon_conf(sc: Scenario, me: str, peer: str) -> str:
    """pyracoon's racoon.conf for ``sc``: the memo's paths, then the interop suite's sections."""
    return (
        f'path certificate "{RACOON_DIR}/cert";\n'
        f'path pre_shared_key "{RACOON_DIR}/psk.txt";\n' + racoon_sections(sc, me, peer)
    )


@dataclass
class CharonCase:
    """What one run of pyracoon against charon in the lab showed."""

    sc: Scenario
    pyracoon_initiates: bool
    pyracoon: MemoHost
    charon: LabCharon
    steps: list[str] = field(default_factory=list)
    error: str = ""  # the traceback, when the procedure itself broke off
    plugins: str = ""  # charon's "loaded plugins:" line from swanctl --stats
    policies: str = ""  # ip xfrm policy on pyracoon's host after pysetkey
    pings: dict[str, str] = field(default_factory=dict)  # "from -> to": ping's output
    wire: list[str] = field(default_factory=list)  # tcpdump on pyracoon's eth0
    list_sas: str = ""
    states: dict[str, list[XfrmSA]] = field(default_factory=dict)
    pyracoon_log: str = ""
    charon_log: str = ""
    t0: float = field(default_factory=time.monotonic)

    def step(self, text: str) -> None:
        self.steps.append(f"[{time.monotonic() - self.t0:5.1f} s] {text}")

    def templates(self) -> int:
        """ESP templates in pyracoon's policies as XFRM shows them (one per policy expected)."""
        return len(re.findall(r"tmpl src \S+ dst \S+\s+proto esp", self.policies))

    def wire_esp(self) -> set[tuple[str, str, str]]:
        """(src, dst, spi) of every ESP packet tcpdump saw."""
        return {(m[1], m[2], m[3]) for line in self.wire if (m := WIRE_ESP.search(line))}

    def clear_echoes(self) -> list[str]:
        """ICMP echo requests or replies that crossed the wire unencrypted."""
        return [x for x in self.wire if "ESP(" not in x and re.search(r"echo (request|reply)", x)]

    def charon_spis(self) -> tuple[str, str] | None:
        """charon's (inbound, outbound) SPI as ``swanctl --list-sas`` shows them, as 0x..."""
        m = LIST_SAS_SPIS.search(self.list_sas)
        return (f"0x{m[1]}", f"0x{m[2]}") if m else None

    def explain(self) -> str:
        """Everything a failure message needs to show its cause."""
        return "\n".join(
            [
                *self.steps,
                self.error,
                f"--- charon's {self.plugins}",
                "--- ip xfrm policy on pyracoon's host",
                self.policies,
                *(f"--- ping {k}\n{v}" for k, v in self.pings.items()),
                "--- tcpdump on pyracoon's eth0",
                *self.wire[-40:],
                "--- swanctl --list-sas",
                self.list_sas,
                *(f"--- ip -s xfrm state on {k}: {v}" for k, v in self.states.items()),
                "--- pyracoon log",
                self.pyracoon_log[-6000:],
                "--- charon log (and its stdout)",
                self.charon_log[-12000:],
            ]
        )


def ping(h: MemoHost, dst: str, count: int) -> tuple[bool, str]:
    """``count`` echoes 0.2 s apart; True only when every one was answered."""
    r = h.host.run(f"ping -c {count} -i 0.2 -W 2 {dst}", timeout=30)
    text = r.stdout + r.stderr
    return r.ok and f"{count} received" in text, text.strip()


def static_neighbours(a: MemoHost, b: MemoHost) -> None:
    """Each host knows the other's link-layer address for good (``nud permanent``).

    Why: with IPv6, ``spdadd A B any`` also covers neighbour discovery between A and B. A's
    solicitation goes to a multicast address, outside the policy, but B's advertisement comes
    back to A in the clear, and A's inbound ``require`` policy drops it, so A never learns B's
    link-layer address and not even IKE leaves (racoon set-ups add ``icmp6`` bypass policies
    for this). Fixed neighbour entries keep the SPD the same as in the IPv4 cases.
    """
    for me, peer in ((a, b), (b, a)):
        mac = peer.host.run("cat /sys/class/net/eth0/address").check().stdout.strip()
        me.host.run(
            f"ip -6 neigh replace {peer.address} lladdr {mac} dev eth0 nud permanent"
        ).check()


def pyracoon_ready(h: MemoHost, timeout: float) -> bool:
    """Wait until pyracoon answers ``pyracoonctl``: its start-up with the kernel is over.

    "used as isakmp port" comes before pyracoon's start-up REGISTERs and its SPD dump. On this
    kernel each REGISTER takes about a second (the kernel probes every algorithm it knows,
    asking modprobe for the missing ones), and the daemon serves nothing else meanwhile: an IKE
    packet from charon waits unanswered (and is sent again), an ACQUIRE for the SPD dump. The
    admin socket is answered from the same event loop once those requests are out, and the
    dump's replies are read before an admin reply can be written, so each case starts from a
    daemon that knows its SPD.
    """
    # one pyracoonctl normally does: it connects once the socket is there and waits for the
    # answer (each try is a python start-up on the lab's single CPU, which pyracoon needs too)
    h.wait_log("admin socket", timeout)
    return wait_until(
        lambda: h.host.run(h.private("pyracoonctl show-sa isakmp"), timeout=10).ok, timeout
    )


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def negotiate(lab: KernelLab, sc: Scenario, pyracoon_initiates: bool) -> CharonCase:
    """pyracoon on host1 (``--kernel pfkey``), charon on host2 (kernel-netlink); one initiates.

    The initiating side's own kernel starts it: a ping from host1 hits pyracoon's ``require``
    policy (PF_KEY ACQUIRE), or a ping from host2 hits charon's trap policy (XFRM ACQUIRE). Then
    three pings each way must all be answered; the capture, charon's SAs and both kernels' SAs
    are collected whatever happened, and both daemons are stopped. An exception on the way is
    kept in ``error`` rather than raised, so that its report carries both daemons' logs too.
    """
    h1, h2 = memo_hosts(lab, sc.family)
    charon = LabCharon.on(h2, h1.address)
    case = CharonCase(sc, pyracoon_initiates, h1, charon)
    ca = issue("pyracoon lab CA")
    tcpdump = None
    try:
        if sc.family == 6:
            static_neighbours(h1, h2)
            case.step("IPv6: permanent neighbour entries for the two addresses, no ND")
        install_memo_racoon(h1, ca, racoon_conf(sc, h1.address, h2.address))
        psk = h1.etc / "racoon" / "psk.txt"
        psk.write_text(f"{h2.address}\t{PSK}\n")
        psk.chmod(0o600)
        spd = "spdflush;\nflush;\n" + racoon_policies(sc, h1.address, h2.address)
        case.step(f"host1: pysetkey --kernel pfkey -c -> {h1.setkey('-c', stdin=spd).strip()!r}")
        case.policies = h1.host.run("ip xfrm policy").stdout
        case.step(f"host1: ESP templates in the kernel's policies: {case.templates()}")

        charon.configure(
            sc,
            initiator=not pyracoon_initiates,
            ca=ca,
            me=issue("charon", ca, san=[h2.address]),
            start_action="none" if pyracoon_initiates else "trap",
        )
        charon.start()
        stats = charon.swanctl("--stats").stdout
        case.plugins = next((x for x in stats.splitlines() if "loaded plugins" in x), stats)
        case.step("host2: charon (kernel-netlink) started, swanctl --load-all done")
        tcpdump = capture(h1)
        h1.start_daemon()
        started = time.monotonic()
        if not h1.wait_log("used as isakmp port", 30) or not pyracoon_ready(h1, 30):
            case.step("host1: pyracoon did not start")
            return case
        case.step(
            "host1: pyracoon -F -f racoon.conf --kernel pfkey started, answering pyracoonctl "
            f"after {time.monotonic() - started:.1f} s"
        )

        first, second = (h1, h2) if pyracoon_initiates else (h2, h1)
        trigger = first.host.run(f"ping -c 1 -W 1 {second.address}", timeout=10)
        case.step(f"{first.name}: one ping to start the negotiation (rc {trigger.rc})")
        established = wait_until(
            lambda: (
                h1.log_text().count("IPsec-SA established") >= 2
                and CHILD_LINE.search(charon.log_text()) is not None
            ),
            30,
        )
        case.step(f"both daemons established the SAs: {established}")
        for src, dst in ((h1, h2), (h2, h1)):
            ok, text = ping(src, dst.address, 3)
            case.pings[f"{src.name} -> {dst.name}"] = text
            case.step(f"ping -c 3 {src.name} -> {dst.name}: {'all answered' if ok else 'FAILED'}")
        case.list_sas = charon.swanctl("--list-sas").stdout
        for h in (h1, h2):
            case.states[h.name] = xfrm_states(h)
        return case
    except Exception:  # noqa: BLE001 - reported with the logs, by the caller's assertion
        case.error = traceback.format_exc()
        return case
    finally:
        if tcpdump is not None:
            time.sleep(0.3)  # the last replies still in flight
        # all three told at once, then each waited for; stop() escalates for a straggler
        procs = [p for p in (tcpdump and tcpdump.proc, h1.daemon, charon.lab_proc) if p]
        for proc in procs:
            if proc.running():
                proc.signal()
        for proc in procs:
            if proc.wait(10) is None:
                proc.stop()
        if tcpdump is not None:
            case.wire = tcpdump.lines()
        case.pyracoon_log = h1.log_text()
        case.charon_log = charon.diagnostics()
