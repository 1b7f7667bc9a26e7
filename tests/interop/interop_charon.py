"""strongSwan's charon (IKEv1) as a peer in a network namespace: config writer, life, log reader.

charon is configured through its own ``strongswan.conf`` and ``swanctl.conf`` in a state
directory and reached over a vici socket in that directory.  Two things make it coexist with
the rest of the machine: it runs in a private mount namespace (``ip netns exec`` gives one) with
the state's ``run`` directory bound over ``/run`` (its pid file path is compiled in), and, with
``fake_kernel``, with a copy of the plugin directory plus our no-op kernel-ipsec plugin
(``build-fake-kernel.sh``) bound over the system's plugin directory -- the system is untouched.

Why the fake kernel: this machine's kernel has XFRM but no ESP, so a stock charon fails to
install the SAs and answers with a Delete (responder) or NO-PROPOSAL-CHOSEN (initiator).  With
the plugin, quick mode completes and charon still logs every key it derived (chd level 4), which
is what the tests compare with the SAs pyracoon installs.

Where the commands run is five methods (``run_in_ns``, ``launch``, ``running``, ``stop``,
``stdout_text``): here ``ip netns exec``; ``tests/lab/lab_charon.py`` sends them into the kernel
lab, whose kernel has ESP, and runs the same configuration there with kernel-netlink, no fake.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from interop_lab import (
    GROUP_NAMES,
    PSK,
    SUBNETS,
    SUITES,
    Scenario,
    run,
    stop_pid,
    unavailable,
    write_charon_pem,
)

from pyracoon.lab import Issued

CHARON = Path("/usr/lib/ipsec/charon")
PLUGINDIR = Path("/usr/lib/ipsec/plugins")
BUILDER = Path(__file__).resolve().parent / "build-fake-kernel.sh"

#: The plugins our strongswan.conf loads, and the Debian package of each.  ``openssl`` is the one
#: that goes missing: it is in libstrongswan-standard-plugins, only a Recommends of
#: strongswan-charon, and without it charon has no 3DES or AES and answers
#: INVALID-KEY-INFORMATION -- a missing prerequisite, not a pyracoon bug.
REQUIRED_PLUGINS = {
    "random": "libstrongswan", "nonce": "libstrongswan",
    "openssl": "libstrongswan-standard-plugins",
    "pem": "libstrongswan", "pkcs1": "libstrongswan", "pkcs8": "libstrongswan",
    "x509": "libstrongswan", "revocation": "libstrongswan", "constraints": "libstrongswan",
    "pubkey": "libstrongswan", "sha1": "libstrongswan", "sha2": "libstrongswan",
    "md5": "libstrongswan", "hmac": "libstrongswan", "gmp": "libstrongswan",
    "kernel-netlink": "libstrongswan", "socket-default": "strongswan-libcharon",
    "vici": "strongswan-swanctl",
}  # fmt: skip

started: list[Charon] = []
"""The charons the running test started, whose logs a failure report shows."""


def loaded_plugins(stats: str) -> list[str]:
    """The plugin names of ``swanctl --stats``' ``loaded plugins:`` line."""
    for line in stats.splitlines():
        if line.strip().startswith("loaded plugins:"):
            return line.split(":", 1)[1].split()
    return []


def missing_plugins(stats: str, wanted: list[str]) -> list[str]:
    """Which of ``wanted`` charon did not load (a missing or broken .so is only logged)."""
    have = set(loaded_plugins(stats))
    return [w for w in wanted if w not in have]


def report_sections() -> list[tuple[str, str]]:
    """A ``charon log`` section per charon of the current test, for its failure report."""
    return [(f"charon log ({c.address}, {c.log_path})", c.diagnostics()) for c in started]


def charon_version() -> str:
    r = run("dpkg-query", "-W", "-f=${Version}", "strongswan-charon", check=False)
    return r.stdout.strip() or "unknown"


def build_fake_kernel() -> tuple[Path | None, str]:
    """The plugin's path, or None and why not."""
    try:
        r = subprocess.run([str(BUILDER)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    so = Path(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
    if r.returncode != 0 or so is None or not so.exists():
        return None, r.stderr.strip()[-2000:]
    return so, ""


def dn_string(issued: Issued) -> str:
    """The subject as strongSwan writes an ID_DER_ASN1_DN, in certificate order."""
    return ", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in issued.cert.subject)


@dataclass
class ChildKeys:
    """One CHILD_SA as charon logged it: its SPIs (hex) and the four keys (hex)."""

    spi_in: int
    spi_out: int
    keys: dict[str, str] = field(default_factory=dict)


@dataclass
class Charon:
    """One charon in namespace ``ns``; ``start`` returns once vici answers."""

    ns: str
    state: Path
    address: str
    peer: str
    fake_kernel: Path | None = None
    proc: subprocess.Popen | None = None
    without_plugins: tuple[str, ...] = ()
    """Plugins left out of the copied plugin directory (with ``fake_kernel``): how a test makes
    the charon of a machine that lacks a plugin package."""

    @property
    def log_path(self) -> Path:
        return self.state / "charon.log"

    # -- where its commands run: here, through ``ip netns exec`` (the kernel lab overrides these)

    def run_in_ns(
        self, argv: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        """``argv`` in this charon's namespace, with ``env`` (and a plain PATH) only."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True, text=True, timeout=timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
        )  # fmt: skip

    def launch(self, shell: str, env: dict[str, str]) -> None:
        """Start ``sh -c shell`` in the namespace; its output goes to ``charon.stdout``."""
        out = (self.state / "charon.stdout").open("w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "env", *(f"{k}={v}" for k, v in env.items()),
             "sh", "-c", shell],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stdout_text(self) -> str:
        so = self.state / "charon.stdout"
        return so.read_text(errors="replace") if so.exists() else ""

    def stop(self) -> None:
        stop_pid(self.proc)

    # -- what it is told

    def swanctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return self.run_in_ns(
            ["swanctl", *args, "--uri", f"unix://{self.state / 'charon.vici'}"],
            {"STRONGSWAN_CONF": str(self.state / "strongswan.conf"),
             "SWANCTL_DIR": str(self.state / "swanctl")},
            timeout,
        )  # fmt: skip

    def configure(
        self,
        sc: Scenario,
        *,
        initiator: bool,
        ca: Issued,
        me: Issued,
        start_action: str = "none",
    ) -> None:
        """strongswan.conf and swanctl.conf for this scenario.

        As a responder charon gets the scenario's proposal with and without PFS (so that what
        pyracoon proposes decides); as an initiator exactly the scenario's. ``start_action``
        ``trap`` makes charon install its policies at once and initiate on its kernel's ACQUIRE
        (only meaningful with a kernel that has ESP: the fake kernel never sends one).
        """
        s = self.state
        for sub in ("run", "swanctl/x509", "swanctl/x509ca", "swanctl/private"):
            (s / sub).mkdir(parents=True, exist_ok=True)
        suite = SUITES[sc.suite]
        load = " ".join(REQUIRED_PLUGINS)
        if self.fake_kernel is not None:
            # critical (!): refuse to start rather than fall back to kernel-netlink's ESP
            load = "fake-kernel! " + load
        (s / "strongswan.conf").write_text(f"""charon {{
  load_modular = no
  load = {load}
  install_routes = no
  install_virtual_ip = no
  retransmit_tries = 2
  retransmit_timeout = 2
  i_dont_care_about_security_and_use_aggressive_mode_psk = yes
  plugins {{
    vici {{ socket = unix://{s / "charon.vici"} }}
  }}
  filelog {{
    main {{
      path = {self.log_path}
      time_format = %T
      ike_name = yes
      append = no
      flush_line = yes
      default = 1
      ike = 4
      chd = 4
      cfg = 2
      knl = 2
      net = 1
      enc = 1
    }}
  }}
  syslog {{
  }}
}}
swanctl {{
  load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random
}}
""")
        if sc.auth == "psk":
            local = "auth = psk"
            remote = f"auth = psk\n      id = {self.peer if initiator else '%any'}"
            secrets = f'secrets {{\n  ike-any {{\n    secret = "{PSK}"\n  }}\n}}\n'
        else:
            write_charon_pem(s / "swanctl/x509ca/ca.pem", ca)
            write_charon_pem(s / "swanctl/x509/me.pem", me, s / "swanctl/private/me.pem")
            local = f'auth = pubkey\n      certs = me.pem\n      id = "{dn_string(me)}"'
            remote = "auth = pubkey\n      cacerts = ca.pem\n      id = %any"
            secrets = ""
        groups = (0, suite.group) if not initiator else ((suite.group,) if sc.pfs else (0,))
        esp = ",".join(suite.esp + (f"-{GROUP_NAMES[g]}" if g else "") for g in groups)
        if sc.encap == "tunnel":
            pyr_net, charon_net = SUBNETS[sc.family]
            lts, rts = charon_net, pyr_net
        else:
            lts = rts = "dynamic"
        (s / "swanctl/swanctl.conf").write_text(f"""connections {{
  interop {{
    version = 1
    aggressive = {"yes" if sc.mode == "aggressive" else "no"}
    local_addrs = {self.address}
    remote_addrs = {self.peer if initiator else "%any"}
    proposals = {suite.ike}
    dpd_delay = 0
    local {{
      {local}
    }}
    remote {{
      {remote}
    }}
    children {{
      child {{
        mode = {sc.encap}
        esp_proposals = {esp}
        local_ts = {lts}
        remote_ts = {rts}
        start_action = {start_action}
      }}
    }}
  }}
}}
{secrets}""")

    def start(self) -> None:
        mounts = f"mount --bind '{self.state / 'run'}' /run"
        if self.fake_kernel is not None:
            plugins = self.state / "plugins"
            plugins.mkdir(exist_ok=True)
            left_out = {f"libstrongswan-{name}.so" for name in self.without_plugins}
            for so in PLUGINDIR.glob("*.so"):
                if so.name not in left_out:
                    (plugins / so.name).write_bytes(so.read_bytes())
            (plugins / self.fake_kernel.name).write_bytes(self.fake_kernel.read_bytes())
            mounts += f" && mount --bind '{plugins}' '{PLUGINDIR}'"
        # exec: the pid we hold is charon's own, so stopping it by pid is exact
        self.launch(
            f"{mounts} && exec {CHARON}", {"STRONGSWAN_CONF": str(self.state / "strongswan.conf")}
        )
        started.append(self)
        deadline = time.monotonic() + 15
        while (stats := self.swanctl("--stats", timeout=5)).returncode != 0:
            if not self.running() or time.monotonic() > deadline:
                raise AssertionError(f"charon did not start:\n{self.diagnostics()}")
            time.sleep(0.05)
        missing = missing_plugins(stats.stdout, list(REQUIRED_PLUGINS))
        if missing:
            packages = sorted({REQUIRED_PLUGINS[m] for m in missing})
            self.stop()
            unavailable(
                f"charon did not load plugin(s) {', '.join(missing)} "
                f"(apt-get install {' '.join(packages)})",
                f"swanctl --stats:\n{stats.stdout}\n{self.diagnostics()}",
            )
        loaded = self.swanctl("--load-all")
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr

    def initiate(self, timeout: int = 15) -> subprocess.CompletedProcess:
        return self.swanctl(
            "--initiate", "--child", "child", "--timeout", str(timeout), timeout=timeout + 5
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def diagnostics(self) -> str:
        return f"charon log:\n{self.log_text()}\nstdout: {self.stdout_text()}"

    def wait_log(self, pattern: str, timeout: float = 20) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log_text())
            if m:
                return m
            time.sleep(0.1)
        return None

    def child(self) -> ChildKeys:
        """The CHILD_SA charon established, with the keys it logged just before."""
        text = self.log_text()
        m = re.search(r"CHILD_SA \S+ established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o", text)
        assert m, f"charon established no CHILD_SA:\n{text}"
        child = ChildKeys(int(m.group(1), 16), int(m.group(2), 16))
        before = text[: m.start()]
        for label in (
            "encryption initiator key",
            "encryption responder key",
            "integrity initiator key",
            "integrity responder key",
        ):
            child.keys[label] = hexdump_after(before, label)
        return child


def hexdump_after(text: str, label: str) -> str:
    """The last ``LABEL => N bytes @ ...`` dump in charon's log, as hex."""
    start = text.rfind(f"{label} => ")
    if start < 0:
        return ""
    header, *rest = text[start:].splitlines()
    want = int(re.search(r"=> (\d+) bytes", header).group(1))  # type: ignore[union-attr]
    out = ""
    for line in rest:
        m = re.search(r"\s\d+: ((?:[0-9A-F]{2} ?)+)", line)
        if not m:
            break
        out += m.group(1).replace(" ", "").lower()
        if len(out) >= 2 * want:
            break
    return out[: 2 * want]
