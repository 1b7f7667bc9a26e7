"""The kernel lab: a real Linux kernel (user-mode-linux) as an ordinary process, with hosts in it.

pyracoon's simulated kernel was written with pyracoon's own PF_KEY codec, so it agrees with the
codec's mistakes. The reference is a real kernel. Debian's ``user-mode-linux`` package is Linux
6.1 built to run as a process (``linux.uml``); its modules in ``/usr/lib/uml/modules`` include
``af_key``, ``xfrm_user``, ``esp4``/``esp6``, ``ah4``/``ah6``, IPComp, ``veth`` and ``bridge``.
Booted with the host's root file system (hostfs) it sees the same python, venv, pyracoon, ``ip``,
``tcpdump`` and strongSwan, and it has a network stack of its own, so nothing it does reaches the
host's network. It boots in about three seconds.

Inside, :mod:`pyracoon.labagent` carries out requests that this module drops into a shared
directory (the two kernels share files, not sockets). On top of that:

* :class:`KernelLab` boots the kernel, loads the IPsec modules (the kernel's own module requests,
  such as ``authenc`` or ``hmac(sha1)``, go through a ``modprobe`` wrapper that knows where the
  UML modules are), makes a bridge ``lab0``, runs commands, and always powers off: on ``close``,
  and in any case after ``life`` seconds (``timeout`` around the whole kernel).
* :class:`Host` is a network namespace on the bridge with any IPv4/IPv6 addresses -- the memo's
  own addresses too, since nothing leaves the lab -- and ``run``/``spawn`` bound to it.

Used by the kernel-lab tests (``tests/lab``) and by ``pyracoon-demo --real-kernel``. Without
``linux.uml`` or without root, :func:`unavailable_reason` says why, and the tests skip (fail in
CI).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UML = "linux.uml"
MODULE_DIR = Path("/usr/lib/uml/modules")
#: Loaded at boot. IPsec (PF_KEY, XFRM, ESP, AH, IPComp, tunnels) and the lab's own network.
MODULES = (
    "af_key",
    "xfrm_user",
    "esp4",
    "esp6",
    "ah4",
    "ah6",
    "xfrm_ipcomp",
    "ipcomp",
    "ipcomp6",
    "xfrm4_tunnel",
    "xfrm6_tunnel",
    "tunnel4",
    "tunnel6",
    "veth",
    "bridge",
)
BRIDGE = "lab0"
_ids = itertools.count(1)
#: The ptrace shim of :func:`xstate_shim` (C source in the package) and where it is built.
XSTATE_SOURCE = Path(__file__).with_name("uml_xstate.c")
XSTATE_CACHE = Path("/var/tmp/pyracoon-uml-xstate")
FP_PANIC = "ptrace set fp regs failed"


class LabError(RuntimeError):
    """The lab could not boot, or a request to it failed; the message is meant for a person."""


def unavailable_reason() -> str | None:
    """Why no lab can run here (None when it can)."""
    if os.geteuid() != 0:
        return "the kernel lab needs root (network namespaces inside user-mode-linux)"
    if shutil.which(UML) is None:
        return f"{UML} not found (apt-get install user-mode-linux kmod)"
    if not MODULE_DIR.is_dir() or not any(MODULE_DIR.iterdir()):
        return f"no user-mode-linux modules in {MODULE_DIR} (apt-get install user-mode-linux)"
    for tool in ("ip", "modprobe"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} not found (apt-get install iproute2 kmod)"
    return None


def xstate_shim() -> Path | None:
    """The built ptrace shim that lets UML 6.1 run where the host's XSAVE area is large.

    Debian's UML saves its processes' FPU state in 832 bytes and the host refuses to restore a
    state that is not its whole XSAVE size, so on AVX-512/AMX hosts the kernel panics at once
    (``uml_xstate.c`` says how the shim fixes it). It is preloaded into ``linux.uml`` on every
    host: where the state fits, it passes every request straight through. Built with gcc once
    per source version into :data:`XSTATE_CACHE`; None when gcc is missing (then a host that
    needs it gets a :class:`LabError` saying so).
    """
    source = XSTATE_SOURCE.read_bytes()
    out = XSTATE_CACHE / f"uml_xstate-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if out.exists():
        return out
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    XSTATE_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run(
        [gcc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(XSTATE_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise LabError(f"building {XSTATE_SOURCE.name} failed:\n{r.stderr.strip()}")
    tmp.replace(out)
    return out


@dataclass
class Result:
    """What one command inside the lab did."""

    cmd: str
    rc: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> Result:
        if self.rc != 0:
            why = "timed out" if self.timed_out else f"exit {self.rc}"
            raise LabError(f"lab command failed ({why}): {self.cmd}\n{self.stdout}{self.stderr}")
        return self


@dataclass
class Proc:
    """A process spawned inside the lab; its stdout and stderr go to ``log``."""

    lab: KernelLab
    pid: int
    log: Path
    cmd: str
    rc: int | None = None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig: int = signal.SIGTERM, *, group: bool = False) -> None:
        self.lab.request("signal", pid=self.pid, sig=int(sig), group=group)

    def wait(self, timeout: float = 10) -> int | None:
        if self.rc is None:
            self.rc = self.lab.request("wait", pid=self.pid, timeout=timeout).get("rc")
        return self.rc

    def running(self) -> bool:
        return self.wait(0) is None

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL to its whole group: whatever it started ends too."""
        if self.rc is not None:
            return self.rc
        self.signal(signal.SIGTERM)
        if self.wait(timeout) is None:
            self.signal(signal.SIGKILL, group=True)
            self.wait(5)
        return self.rc

    def wait_output(self, needle: str, timeout: float = 30) -> bool:
        """Poll the log until ``needle`` appears (True), the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return True
            if self.wait(0) is not None:
                return needle in self.output()
            time.sleep(0.05)
        return False


@dataclass
class Host:
    """A network namespace on the lab's bridge, with its addresses."""

    lab: KernelLab
    name: str
    addresses: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """Its first address, without the prefix length."""
        return self.addresses[0].split("/")[0]

    def run(self, cmd: str | Sequence[str], **kw: Any) -> Result:
        return self.lab.run(cmd, ns=self.name, **kw)

    def spawn(self, cmd: str | Sequence[str], **kw: Any) -> Proc:
        return self.lab.spawn(cmd, ns=self.name, **kw)


class KernelLab:
    """One booted user-mode-linux kernel. Use as a context manager: it always powers off."""

    def __init__(
        self,
        *,
        mem: str = "768M",
        life: float = 1200,
        boot_timeout: float = 90,
        workdir: Path | None = None,
        keep: bool = False,
    ) -> None:
        self.mem = mem
        self.life = life
        self.boot_timeout = boot_timeout
        self.keep = keep or workdir is not None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="pyracoon-lab.", dir="/tmp"))
        self.hosts: dict[str, Host] = {}
        self.missing_modules: list[str] = []
        self._uml: subprocess.Popen[bytes] | None = None
        self._procs: list[Proc] = []

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> KernelLab:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def console(self) -> Path:
        """The kernel's console output (boot messages, init's own output)."""
        return self.dir / "console.log"

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _write_init(self) -> Path:
        d = self.dir
        root = d / "root"
        (root / "lib").mkdir(parents=True, exist_ok=True)
        modules = root / "lib" / "modules"
        if not modules.exists():
            modules.symlink_to(MODULE_DIR)
        modprobe = d / "modprobe"
        modprobe.write_text(f'#!/bin/sh\nexec /usr/sbin/modprobe -d {root} "$@"\n')
        modprobe.chmod(0o755)
        for sub in ("req", "resp", "procs"):
            (d / sub).mkdir(exist_ok=True)
        bindir = Path(sys.executable).parent
        pkgroot = Path(__file__).resolve().parent.parent
        path = f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        init = d / "init"
        init.write_text(
            f"""#!/bin/sh
# PID 1 of the lab kernel (written by pyracoon.kernellab)
export PATH={shlex.quote(path)} HOME=/root LANG=C.UTF-8 PYTHONPATH={shlex.quote(str(pkgroot))}
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmp /run
mount -t tmpfs tmp /dev/shm 2>/dev/null
mkdir -p /run/netns /run/racoon
echo {modprobe} > /proc/sys/kernel/modprobe
for m in {" ".join(MODULES)}; do {modprobe} $m 2>/dev/null || echo $m >> {d}/missing-modules; done
ip link set lo up
ip link add {BRIDGE} type bridge && ip link set {BRIDGE} up
echo "lab: booted $(uname -r)"
{shlex.quote(sys.executable)} -m pyracoon.labagent {d} > {d}/agent.log 2>&1
sync
echo o > /proc/sysrq-trigger
sleep 30
"""
        )
        init.chmod(0o755)
        return init

    def boot(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise LabError(reason)
        init = self._write_init()
        cmd = [
            "timeout",
            "--kill-after=10",
            str(int(self.life)),
            UML,
            f"mem={self.mem}",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "rw",
            f"init={init}",
            "con0=fd:0,fd:1",
            "con=null",
        ]
        env = dict(os.environ, TMPDIR=str(self.dir))
        shim = xstate_shim()
        if shim is not None:
            env["LD_PRELOAD"] = str(shim)
        with open(self.console, "wb") as console:
            self._uml = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + self.boot_timeout
        while not (self.dir / "ready").exists():
            if self._uml.poll() is not None or time.monotonic() > deadline:
                tail = self.console_tail()
                self.close()
                if FP_PANIC in tail and shim is None:
                    raise LabError(
                        "the lab kernel panicked at once: this host's XSAVE area (AVX-512/AMX)"
                        " is larger than user-mode-linux 6.1 handles, and the shim that fixes"
                        " it needs gcc (apt-get install gcc libc6-dev)"
                    )
                raise LabError(f"the lab kernel did not come up; its console:\n{tail}")
            time.sleep(0.05)
        missing = self.dir / "missing-modules"
        if missing.exists():
            self.missing_modules = missing.read_text().split()

    def close(self) -> None:
        """Power off (asked nicely, then killed) and remove the lab's files unless kept."""
        uml = self._uml
        if uml is not None and uml.poll() is None:
            try:
                self.request("poweroff", timeout=5)
            except LabError:
                pass
            try:
                uml.wait(20)
            except subprocess.TimeoutExpired:
                pass
            if uml.poll() is None:
                try:
                    os.killpg(uml.pid, signal.SIGKILL)
                except OSError:
                    pass
                uml.wait(10)
        self._uml = None
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- requests --------------------------------------------------------------------------------

    def request(self, op: str, *, timeout: float = 30, **body: Any) -> dict[str, Any]:
        """One request to the agent; waits for its answer (``timeout`` plus a margin)."""
        if self._uml is None or self._uml.poll() is not None:
            raise LabError(f"the lab kernel is not running; its console:\n{self.console_tail()}")
        rid = f"{os.getpid()}-{next(_ids)}"
        tmp = self.dir / "req" / f".{rid}.tmp"
        tmp.write_text(json.dumps(dict(body, op=op, timeout=timeout)))
        os.rename(tmp, self.dir / "req" / f"{rid}.json")
        answer = self.dir / "resp" / f"{rid}.json"
        deadline = time.monotonic() + timeout + 30
        while not answer.exists():
            if self._uml.poll() is not None:
                if op == "poweroff":
                    return {"rc": 0}
                raise LabError(f"the lab kernel stopped; its console:\n{self.console_tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"the lab did not answer {op} within {timeout + 30:g} s")
            time.sleep(0.01)
        reply: dict[str, Any] = json.loads(answer.read_text())
        answer.unlink()
        (self.dir / "req" / f"{rid}.json").unlink(missing_ok=True)
        if "error" in reply:
            raise LabError(f"lab {op} failed: {reply['error']}")
        return reply

    @staticmethod
    def _cmd(cmd: str | Sequence[str]) -> dict[str, Any]:
        return {"sh": cmd} if isinstance(cmd, str) else {"argv": [str(c) for c in cmd]}

    def run(
        self,
        cmd: str | Sequence[str],
        *,
        ns: str | None = None,
        timeout: float = 60,
        check: bool = False,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Result:
        """Run ``cmd`` (a shell string or an argv) inside the lab, in namespace ``ns``."""
        text = cmd if isinstance(cmd, str) else shlex.join(str(c) for c in cmd)
        r = self.request(
            "run", ns=ns, timeout=timeout, input=input, env=env, cwd=cwd, **self._cmd(cmd)
        )
        where = f"[{ns}] " if ns else ""
        result = Result(
            where + text,
            r.get("rc"),
            r.get("stdout", ""),
            r.get("stderr", ""),
            r.get("timeout", False),
        )
        return result.check() if check else result

    def spawn(
        self,
        cmd: str | Sequence[str],
        *,
        ns: str | None = None,
        name: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Proc:
        """Start ``cmd`` in the background inside the lab; ``close`` stops whatever is left."""
        n = next(_ids)
        log = self.dir / "procs" / f"{name or 'proc'}-{n}.log"
        r = self.request("spawn", ns=ns, log=str(log), env=env, cwd=cwd, **self._cmd(cmd))
        text = cmd if isinstance(cmd, str) else shlex.join(str(c) for c in cmd)
        proc = Proc(self, int(r["pid"]), log, text)
        self._procs.append(proc)
        return proc

    # -- hosts -----------------------------------------------------------------------------------

    def add_host(self, name: str, *addresses: str) -> Host:
        """A namespace ``name`` on the bridge, its ``eth0`` holding ``addresses`` ("ADDR/LEN").

        IPv6 addresses skip duplicate address detection, so they are usable at once.
        """
        if name in self.hosts:
            raise LabError(f"the lab already has a host {name!r}")
        veth = f"v-{name}"[:15]
        steps = [
            f"ip netns add {name}",
            f"ip link add {veth} type veth peer name eth0 netns {name}",
            f"ip link set {veth} master {BRIDGE} up",
            f"ip -n {name} link set lo up",
            f"ip -n {name} link set eth0 up",
        ]
        for a in addresses:
            extra = " nodad" if ":" in a else ""
            steps.append(f"ip -n {name} addr add {a} dev eth0{extra}")
        self.run(" && ".join(steps), check=True)
        host = Host(self, name, list(addresses))
        self.hosts[name] = host
        return host

    def stop_all(self) -> None:
        """Stop every process spawned so far (each by its pid, then its group)."""
        for p in self._procs:
            try:
                p.stop(5)
            except LabError:
                pass
