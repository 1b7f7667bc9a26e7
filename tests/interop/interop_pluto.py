"""libreswan's pluto (IKEv1) as a peer in a network namespace, run from a private unpack.

``fetch-libreswan.sh`` unpacks Debian's package (it conflicts with strongSwan's, so it is not
installed).  pluto gets an NSS database with our test CA and its own certificate, an ipsec.conf
with one connection, and a private mount namespace in which the unpacked helpers appear at the
compiled-in ``/usr/libexec/ipsec`` and our run directory at ``/run``.

This kernel has no ESP and pluto has no no-op kernel backend, so pluto cannot install the SAs
of a quick mode: as the responder it accepts QM1, derives its keys and fails in the kernel
("netlink response for Add SA ...: Protocol not supported"), so no QM2 goes out; as the
initiator it gets our QM2 and fails the same way instead of sending QM3.  What pluto proves here
is phase 1 and a quick-mode proposal it accepts.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, pkcs12
from interop_lab import run, stop_pid

from pyracoon.lab import Issued

FETCH = Path(__file__).resolve().parent / "fetch-libreswan.sh"


def fetch_libreswan() -> tuple[Path | None, str]:
    """The unpacked package root, or None and why not."""
    try:
        r = subprocess.run([str(FETCH)], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if r.returncode != 0 or not r.stdout.strip():
        return None, r.stderr.strip()[-2000:]
    return Path(r.stdout.strip().splitlines()[-1]), ""


def libreswan_version(root: Path) -> str:
    """The Debian version fetch-libreswan.sh recorded, else what pluto says of itself."""
    recorded = root.parent / "version"
    if recorded.exists() and recorded.read_text().strip():
        return recorded.read_text().strip()
    r = run(str(root / "usr/libexec/ipsec/pluto"), "--version", check=False)
    m = re.search(r"Libreswan (\S+)", r.stdout + r.stderr)
    return m.group(1) if m else "unknown"


@dataclass
class Pluto:
    """One pluto in namespace ``ns``; ``start`` returns once its connection is loaded."""

    ns: str
    state: Path
    root: Path
    address: str
    peer: str
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.state / "pluto.log"

    @property
    def ctl(self) -> Path:
        return self.state / "run/pluto/pluto.ctl"

    def configure(self, ca: Issued, me: Issued, peer_dn: str, *, ike: str, esp: str) -> None:
        s = self.state
        nss = s / "nss"
        (s / "run/pluto").mkdir(parents=True, exist_ok=True)
        nss.mkdir(parents=True, exist_ok=True)
        run("certutil", "-N", "-d", f"sql:{nss}", "--empty-password")
        (s / "ca.pem").write_bytes(ca.cert.public_bytes(Encoding.PEM))
        run("certutil", "-A", "-d", f"sql:{nss}", "-n", "ca", "-t", "CT,,", "-a",
            "-i", str(s / "ca.pem"))  # fmt: skip
        p12 = s / "me.p12"
        p12.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"me", me.key, me.cert, None, BestAvailableEncryption(b"pkcs12")
            )
        )
        p12.chmod(0o600)
        run("pk12util", "-i", str(p12), "-d", f"sql:{nss}", "-W", "pkcs12")
        (s / "ipsec.secrets").write_text("")
        (s / "ipsec.conf").write_text(f"""config setup
    ikev1-policy=accept
    plutodebug="all private"
conn interop
    ikev2=no
    authby=rsasig
    left={self.address}
    leftcert=me
    leftid=%fromcert
    leftrsasigkey=%cert
    right={self.peer}
    rightid="{peer_dn}"
    rightrsasigkey=%cert
    ike={ike}
    phase2alg={esp}
    pfs=yes
    salifetime=1h
    type=transport
    auto=add
""")

    def start(self) -> None:
        s = self.state
        libexec = self.root / "usr/libexec/ipsec"
        mounts = (
            f"mount -t tmpfs pyracoon-interop /usr/libexec && mkdir /usr/libexec/ipsec && "
            f"mount --bind '{libexec}' /usr/libexec/ipsec && mount --bind '{s / 'run'}' /run"
        )
        pluto = (
            f"exec /usr/libexec/ipsec/pluto --nofork --stderrlog --config '{s / 'ipsec.conf'}' "
            f"--rundir '{s / 'run/pluto'}' --nssdir '{s / 'nss'}' --ipsecdir '{s}' "
            f"--secretsfile '{s / 'ipsec.secrets'}' --no-dnssec"
        )
        out = self.log_path.open("w")
        # exec: the pid we hold is pluto's own
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "sh", "-c", f"{mounts} && {pluto}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        if not self.wait_log(r'"interop": added IKEv1 connection', 15):
            raise AssertionError(f"pluto did not start:\n{self.summary()}")

    def initiate(self) -> None:
        r = subprocess.run(
            ["ip", "netns", "exec", self.ns, str(self.root / "usr/libexec/ipsec/whack"),
             "--ctlsocket", str(self.ctl), "--name", "interop", "--initiate", "--asynchronous"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def summary(self) -> str:
        """pluto's log without its debug lines (those start with ``| ``)."""
        return "\n".join(
            line for line in self.log_text().splitlines() if not re.search(r": \| ", line)
        )

    def wait_log(self, pattern: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return bool(re.search(pattern, self.log_text()))
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        stop_pid(self.proc)
