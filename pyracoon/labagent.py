"""The kernel lab's agent: runs inside the user-mode-linux kernel and carries out the host's orders.

``pyracoon.kernellab`` boots a real Linux kernel (user-mode-linux) whose root file system is the
host's own (hostfs), so this module, python and every tool are there unchanged. The two kernels
share no socket, but they share files: the host drops one JSON request per file into
``DIR/req/`` (written elsewhere, then renamed, so a file is always whole) and this agent answers
each with ``DIR/resp/ID.json``. Requests run in threads, so a ``run`` that waits for a ping does
not hold up a ``spawn`` beside it.

Operations (``op``):

``run``      a command (``argv`` list or ``sh`` string), optionally in network namespace ``ns``,
             with ``timeout``; answers ``rc``, ``stdout``, ``stderr``.
``spawn``    start a command in the background, its output to ``log``; answers its ``pid``.
``signal``   send ``sig`` to a spawned ``pid``.
``wait``     wait up to ``timeout`` for a spawned ``pid``; answers ``rc`` (None if still running).
``poweroff`` answer, then leave: PID 1 powers the kernel off.

Nothing here parses the host's data beyond JSON; a bad request gets an ``error`` answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

POLL = 0.005


def _command(req: dict[str, Any]) -> list[str]:
    argv = list(req["argv"]) if "argv" in req else ["/bin/sh", "-c", str(req["sh"])]
    ns = req.get("ns")
    return ["ip", "netns", "exec", str(ns), *argv] if ns else argv


def _env(req: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (req.get("env") or {}).items()})
    return env


class Agent:
    """Reads requests from ``dir/req`` and writes answers to ``dir/resp`` until ``poweroff``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.req = directory / "req"
        self.resp = directory / "resp"
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def answer(self, rid: str, body: dict[str, Any]) -> None:
        tmp = self.resp / f".{rid}.tmp"
        tmp.write_text(json.dumps(body))
        os.rename(tmp, self.resp / f"{rid}.json")

    def handle(self, rid: str, req: dict[str, Any]) -> None:
        try:
            body = self.dispatch(req)
        except Exception as e:  # an order we cannot carry out is answered, never fatal
            body = {"error": f"{type(e).__name__}: {e}"}
        self.answer(rid, body)

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "run":
            try:
                r = subprocess.run(
                    _command(req),
                    input=(req.get("input") or "").encode(),
                    capture_output=True,
                    timeout=float(req.get("timeout", 60)),
                    env=_env(req),
                    cwd=req.get("cwd"),
                )
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode(errors="replace")
                err = (e.stderr or b"").decode(errors="replace")
                return {"rc": None, "stdout": out, "stderr": err, "timeout": True}
            return {
                "rc": r.returncode,
                "stdout": r.stdout.decode(errors="replace"),
                "stderr": r.stderr.decode(errors="replace"),
            }
        if op == "spawn":
            log = open(req["log"], "ab")  # noqa: SIM115 - owned by the child from here on
            child = subprocess.Popen(
                _command(req),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(req),
                cwd=req.get("cwd"),
                start_new_session=True,
            )
            log.close()
            with self.lock:
                self.procs[child.pid] = child
            return {"pid": child.pid}
        if op in ("signal", "wait"):
            with self.lock:
                p = self.procs.get(int(req["pid"]))
            if p is None:
                return {"error": f"no spawned process {req['pid']}"}
            if op == "signal":
                if p.poll() is None:
                    sig = int(req.get("sig", signal.SIGTERM))
                    target = -p.pid if req.get("group") else p.pid
                    os.kill(target, sig)
                return {"rc": p.poll()}
            try:
                return {"rc": p.wait(float(req.get("timeout", 10)))}
            except subprocess.TimeoutExpired:
                return {"rc": None}
        if op == "poweroff":
            self.done.set()
            return {"rc": 0}
        return {"error": f"unknown op {op!r}"}

    def serve(self) -> None:
        self.resp.mkdir(exist_ok=True)
        (self.dir / "ready").write_text(f"{os.getpid()}\n")
        seen: set[str] = set()
        while not self.done.is_set():
            try:
                names = sorted(n for n in os.listdir(self.req) if n.endswith(".json"))
            except FileNotFoundError:
                break  # the host removed the lab: nobody is left to answer
            for name in names:
                if name in seen:
                    continue
                seen.add(name)
                rid = name[: -len(".json")]
                try:
                    req = json.loads((self.req / name).read_text())
                except (OSError, ValueError) as e:
                    self.answer(rid, {"error": f"unreadable request: {e}"})
                    continue
                threading.Thread(target=self.handle, args=(rid, req), daemon=True).start()
            time.sleep(POLL)
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    Agent(Path(args[0])).serve()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
