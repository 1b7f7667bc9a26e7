"""Two network namespaces joined by a veth pair, and a real pyracoon inside one of them.

The interop suite's ground: namespace ``A`` holds pyracoon (10.77.0.1, fd77::1), namespace ``B``
the third-party peer (10.77.0.2, fd77::2).  Nothing leaves these namespaces.  Names carry the
pid and a counter so that two runs (or a run after a crash) never collide, and :meth:`close`
removes them whatever happened to the test.

pyracoon's kernel is a ``pyracoon-kernel`` on a Unix socket *outside* the namespaces (a path
socket is reachable from any network namespace), so the test reads the SAs pyracoon installed
with a plain DUMP, exactly as ``pysetkey -D`` would.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyracoon.kernel.base import open_kernel
from pyracoon.kernel.pfkey import Message
from pyracoon.kernel.sadb import ExtType, SaState
from pyracoon.lab import Issued, SimHost, install_certificates, program, write_pem

V4 = ("10.77.0.1", "10.77.0.2")
V6 = ("fd77::1", "fd77::2")
#: Tunnel-mode subnets behind A and B; they exist only in the SPD and the peers' selectors.
SUBNETS = {4: ("192.168.1.0/24", "192.168.2.0/24"), 6: ("fd78:1::/64", "fd78:2::/64")}
#: One host in each of those subnets: the packet that triggers a tunnel-mode ACQUIRE.
SUBNET_HOSTS = {4: ("192.168.1.5", "192.168.2.5"), 6: ("fd78:1::5", "fd78:2::5")}
PSK = "interop test secret"
#: In CI every tool is installed by .ci/run: a missing one is a failure there, a skip elsewhere.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str, details: str = "") -> None:
    """Skip locally, fail in CI: CI installs every tool, so absence there is a regression.

    ``details`` (a tool's own log, say) goes into the failure, where someone has to find the
    cause; a local skip shows the one-line reason only.
    """
    if IN_CI:
        pytest.fail(
            f"interop prerequisite missing in CI: {reason}" + (f"\n{details}" if details else "")
        )
    pytest.skip(reason)
_counter = itertools.count()


def run(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    return r


def stop_pid(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL: everything a test starts ends by its own pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class NetnsPair:
    """``A`` <-veth-> ``B`` with IPv4 and IPv6 addresses, removed by :meth:`close`."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}x{next(_counter)}"
        self.a, self.b = f"pyiA{tag}", f"pyiB{tag}"
        self.veth_a, self.veth_b = f"pvA{tag}"[:15], f"pvB{tag}"[:15]
        try:
            run("ip", "netns", "add", self.a)
            run("ip", "netns", "add", self.b)
            run("ip", "link", "add", self.veth_a, "netns", self.a, "type", "veth",
                "peer", "name", self.veth_b, "netns", self.b)  # fmt: skip
            for ns, dev, v4, v6 in ((self.a, self.veth_a, V4[0], V6[0]),
                                    (self.b, self.veth_b, V4[1], V6[1])):  # fmt: skip
                run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
                run("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
                run("ip", "-n", ns, "link", "set", "lo", "up")
                run("ip", "-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    def exec_argv(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def close(self) -> None:
        for ns in (self.a, self.b):
            run("ip", "netns", "del", ns, check=False)


def sa_dump(kernel_spec: str) -> list[Message]:
    """Every SA in a pyracoon-kernel, as DUMP replies."""
    with open_kernel(kernel_spec) as k:
        return k.dump(timeout=5)


@dataclass
class KernelSa:
    """What the comparison with the peer needs from one SA."""

    src: str
    dst: str
    spi: int
    mode: int
    encrypt: int
    auth: int
    ekey: str
    akey: str

    @classmethod
    def of(cls, m: Message) -> KernelSa:
        ekey, akey = m.key(ExtType.KEY_ENCRYPT), m.key(ExtType.KEY_AUTH)
        sa2 = m.sa2
        return cls(
            str(m.src.addr),
            str(m.dst.addr),
            m.sa.spi,
            int(sa2.mode) if sa2 is not None else 0,
            m.sa.encrypt,
            m.sa.auth,
            ekey.key.hex() if ekey else "",
            akey.key.hex() if akey else "",
        )


@dataclass
class Scenario:
    """One negotiation of the matrix, in words a README table can carry."""

    mode: str  # main | aggressive
    auth: str  # rsasig | psk
    family: int  # 4 | 6
    suite: str  # key of SUITES
    pfs: bool
    encap: str  # transport | tunnel

    @property
    def ident(self) -> str:
        return (
            f"{self.mode}-{self.auth}-v{self.family}-{self.suite}-"
            f"{'pfs' if self.pfs else 'nopfs'}-{self.encap}"
        )

    @property
    def addresses(self) -> tuple[str, str]:
        return V4 if self.family == 4 else V6


@dataclass(frozen=True)
class Suite:
    """One algorithm set in both spellings: racoon.conf's and strongSwan's."""

    p1: str  # racoon proposal lines
    p2: str  # racoon sainfo algorithm lines
    group: int  # IKE group number (also the PFS group)
    ike: str  # strongSwan IKE proposal
    esp: str  # strongSwan ESP proposal without a group


SUITES = {
    "3des-sha1-modp1024": Suite(
        "encryption_algorithm 3des; hash_algorithm sha1;",
        "encryption_algorithm 3des; authentication_algorithm hmac_sha1;",
        2,
        "3des-sha1-modp1024",
        "3des-sha1",
    ),
    "aes256-sha256-modp2048": Suite(
        "encryption_algorithm aes 256; hash_algorithm sha256;",
        "encryption_algorithm aes 256; authentication_algorithm hmac_sha256;",
        14,
        "aes256-sha256-modp2048",
        "aes256-sha256",
    ),
    "aes128-sha1-modp1536": Suite(
        "encryption_algorithm aes 128; hash_algorithm sha1;",
        "encryption_algorithm aes 128; authentication_algorithm hmac_sha1;",
        5,
        "aes128-sha1-modp1536",
        "aes128-sha1",
    ),
}
GROUP_NAMES = {2: "modp1024", 5: "modp1536", 14: "modp2048"}


def racoon_sections(sc: Scenario, me: str, peer: str, extra_remote: str = "") -> str:
    """racoon.conf's ``remote`` and ``sainfo`` for ``sc`` between ``me`` and ``peer``.

    Without paths or ``listen``: where the certificates and the PSK file are depends on the host
    (a directory of the test here, the memo's ``/usr/local/etc/racoon`` in the kernel lab).
    """
    suite = SUITES[sc.suite]
    method = "rsasig" if sc.auth == "rsasig" else "pre_shared_key"
    ident = (
        '    certificate_type x509 "host_cert.pem" "host_priv.pem";\n    my_identifier asn1dn;\n'
        if sc.auth == "rsasig"
        else f"    my_identifier address {me};\n"
    )
    return (
        f"remote {peer} {{\n"
        f"    exchange_mode {sc.mode};\n{ident}{extra_remote}"
        f"    proposal {{ {suite.p1} authentication_method {method}; "
        f"dh_group {suite.group}; }}\n"
        "}\n"
        "sainfo anonymous {\n"
        + (f"    pfs_group {suite.group};\n" if sc.pfs else "")
        + f"    {suite.p2}\n"
        "    compression_algorithm deflate;\n"
        "    lifetime time 2 hour;\n"
        "}\n"
    )


def racoon_policies(sc: Scenario, me: str, peer: str) -> str:
    """The racoon-style ``require`` SPD for ``sc`` (setkey syntax): one rule each way."""
    if sc.encap == "transport":
        return (
            f"spdadd {me} {peer} any -P out ipsec esp/transport//require;\n"
            f"spdadd {peer} {me} any -P in ipsec esp/transport//require;\n"
        )
    mine, theirs = SUBNETS[sc.family]
    return (
        f"spdadd {mine} {theirs} any -P out ipsec esp/tunnel/{me}-{peer}/require;\n"
        f"spdadd {theirs} {mine} any -P in ipsec esp/tunnel/{peer}-{me}/require;\n"
    )


@dataclass
class Pyracoon:
    """pyracoon in namespace ``ns`` at ``address``; its kernel and files live in ``dir``."""

    ns: str
    address: str
    dir: Path
    keylog: bool = True
    host: SimHost = field(init=False)

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = SimHost("pyracoon", self.address, self.dir)
        self.host.start_kernel()

    @property
    def kernel_spec(self) -> str:
        return self.host.kernel_spec

    @property
    def log_path(self) -> Path:
        return self.host.log_path

    @property
    def keylog_path(self) -> Path:
        return self.dir / "ike-keys.uat"

    def install(self, ca: Issued, me: Issued, peer: str) -> None:
        """The memo's certificate directory and a PSK file naming the peer's address."""
        install_certificates(self.dir / "cert", ca, me)
        psk = self.dir / "psk.txt"
        psk.write_text(f"{peer}\t{PSK}\n")
        psk.chmod(0o600)

    def load_spd(self, sc: Scenario, peer: str) -> None:
        text = racoon_policies(sc, self.address, peer)
        r = self.host.setkey("-c", stdin="spdflush;\nflush;\n" + text)
        assert r.returncode == 0, r.stdout + r.stderr

    def configure(self, sc: Scenario, peer: str, *, extra_remote: str = "") -> Path:
        return self.write_config(racoon_sections(sc, self.address, peer, extra_remote))

    def write_config(self, body: str) -> Path:
        """racoon.conf: this host's paths and listen line, then ``body``."""
        d = self.dir
        path = d / "racoon.conf"
        path.write_text(
            f'path certificate "{d / "cert"}";\n'
            f'path pre_shared_key "{d / "psk.txt"}";\n'
            f'path pidfile "{d / "racoon.pid"}";\n'
            f"listen {{ isakmp {self.address} [500]; adminsock disabled; }}\n" + body
        )
        return path

    def start(self, config: Path, *extra: str) -> None:
        args = [program("pyracoon"), "-F", "-f", str(config), "-l", str(self.log_path)]
        args += ["--kernel", self.kernel_spec, *extra]
        if self.keylog:
            args += ["--ike-keylog", str(self.keylog_path)]
        self.host.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if not self.host.wait_log("used as isakmp port"):
            raise AssertionError(f"pyracoon did not start:\n{self.why()}")

    def trigger(self, sc: Scenario, peer: str) -> str:
        """One outbound packet through the SPD: the ACQUIRE that makes pyracoon initiate."""
        if sc.encap == "tunnel":
            src, dst = SUBNET_HOSTS[sc.family]
        else:
            src, dst = self.address, peer
        return self.host.run("pyracoon-kernel", "packet", src, dst, "udp", "5000", "53").stdout

    def sas(self) -> list[KernelSa]:
        return [KernelSa.of(m) for m in sa_dump(self.kernel_spec) if m.sa.state == SaState.MATURE]

    def wait_sas(self, timeout: float = 20) -> list[KernelSa]:
        """The mature SAs once there is one in each direction (and a moment for stragglers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sas = self.sas()
            if {s.src for s in sas} >= {self.address} and {s.dst for s in sas} >= {self.address}:
                time.sleep(0.3)
                return self.sas()
            if self.host.daemon is not None and self.host.daemon.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"pyracoon installed no SA pair:\n{self.why()}")

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def why(self) -> str:
        err = ""
        d = self.host.daemon
        if d is not None and d.poll() is not None and d.stderr:
            err = d.stderr.read()
        return f"pyracoon log:\n{self.log_text()}\nstderr: {err}"

    def alive(self) -> bool:
        return self.host.daemon is not None and self.host.daemon.poll() is None

    def stop(self) -> None:
        stop_pid(self.host.daemon)
        stop_pid(self.host.kernel)


def tool_missing(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


def write_charon_pem(path: Path, issued: Issued, key_path: Path | None = None) -> None:
    """PEM files in the places swanctl reads them from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if key_path is not None:
        key_path.parent.mkdir(parents=True, exist_ok=True)
    write_pem(path, issued, key_path)
