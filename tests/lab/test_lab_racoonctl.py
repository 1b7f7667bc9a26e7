"""``pyracoonctl`` against the real racoon 0.9.1, side by side with the real ``racoonctl``.

``tests/admin/test_admin_racoonctl.py`` runs racoonctl against pyracoon; this is the other
direction: our client talking to racoon's own admin socket (racoon's admin.c), where the records
are racoon's and not ours. racoon needs PF_KEY, so it runs in the kernel lab as in
``test_lab_racoon.py`` (whose fixture and helpers this module reuses: one lab boot), with
pyracoon on the other host as its peer, and ``listen { adminsock "/run/racoon/racoon.sock" ...
}``: ``/run`` is racoon's host's private directory (:meth:`pyracoon.memolab.MemoHost.private`),
not the build prefix the lab shares with the machine.

For the read-only commands (``show-sa isakmp``, ``-l``, ``show-sa esp``, ``show-schedule``,
``show-event``) both clients run against the same state and must print the same text once the
clock is masked. The commands that act (``delete-sa``, ``establish-sa isakmp|esp``,
``flush-sa esp``, ``reload-config``) are run with pyracoonctl only and their effect is read
where racoon keeps it: its log, and the kernel's SAD through ``ip xfrm state`` (iproute2, which
shares nothing with our codecs). The tests run in file order, each building on the state the one
before left, as an operator's session would.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labtest import lab_unavailable
from test_lab_racoon import (
    MEMO,
    RACOON_PREFIX,
    SETKEY,
    Pair,
    flush,
    install,
    kernel_sas,
    pair,  # noqa: F401  (the module's lab, a fixture)
    policies,
    pyracoon_ready,
    sc_row,
    start_racoon,
    wait_until,
)

from pyracoon.kernellab import Proc, Result
from pyracoon.lab import issue
from pyracoon.memolab import MemoHost

RACOONCTL = RACOON_PREFIX / "bin" / "racoonctl"
PYRACOONCTL = Path(sys.executable).parent / "pyracoonctl"
SOCK = "/run/racoon/racoon.sock"
STDBUF = ("stdbuf", "-oL")
ADMINSOCK = f'listen {{ adminsock "{SOCK}" "root" "root" 0600; }}\n'

#: The clock in racoonctl's and setkey's layouts: ``2026-12-02 14:47:32`` (show-sa isakmp,
#: show-schedule; racoon converts its monotonic clock to a time_t per request, so the same
#: timer's ``created`` moves by seconds between two requests when the lab's clocks drift),
#: ``Dec  2 14:47:32 2026`` and ``diff: 4(s)`` (setkey -D's lifetimes).
CLOCK = (
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "DATE"),
    (re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"), "DATE"),
    (re.compile(r"diff: \d+\(s\)"), "diff: N(s)"),
)


def masked(text: str) -> str:
    for pattern, repl in CLOCK:
        text = pattern.sub(repl, text)
    return text


@dataclass
class Session:
    """racoon (with its admin socket) and pyracoon, up, with one ISAKMP SA and two IPsec SAs."""

    r: MemoHost
    p: MemoHost

    def ctl(self, client: Path, *args: str, timeout: float = 30) -> Result:
        """One client command on racoon's host, in racoon's mount namespace (its socket)."""
        cmd = shlex.join([str(client), "-s", SOCK, *args])
        return self.r.host.run(self.r.private(cmd), timeout=timeout)

    def both(self, *args: str) -> tuple[Result, Result]:
        """racoonctl, then pyracoonctl, with the same arguments."""
        return self.ctl(RACOONCTL, *args), self.ctl(PYRACOONCTL, *args)

    def sad(self) -> set:
        return kernel_sas(self.r.host.run("ip -s xfrm state").stdout)

    def rlog(self) -> str:
        return self.r.log_text()

    def explain(self, *results: Result) -> str:
        parts = [f"--- rc {x.rc}\n{x.stdout}\n--- stderr\n{x.stderr}" for x in results] + [
            "--- ip -s xfrm state on racoon\n" + self.r.host.run("ip -s xfrm state").stdout,
            "--- racoon log\n" + self.rlog()[-6000:],
            "--- pyracoon log\n" + self.p.log_text()[-3000:],
        ]
        return "\n".join(parts)


@pytest.fixture(scope="module")
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """racoon with its admin socket, pyracoon as its peer, the memo's racoon.conf on both; a
    ping from racoon's host starts the negotiation, so racoon is the initiator."""
    if not os.access(RACOONCTL, os.X_OK):  # before the lab boots for nothing
        lab_unavailable(f"{RACOONCTL} is not built (tests/interop/build-racoon.sh builds it)")
    hosts: Pair = request.getfixturevalue("pair")
    r, p = hosts.for_family(4)
    flush(r, p)
    ca = issue("racoonctl lab CA")
    install(r, ca, ADMINSOCK + MEMO)
    install(p, ca, MEMO)
    for h in (r, p):
        h.log.unlink(missing_ok=True)
    sc = sc_row("main", "rsasig", 4, "3des-sha1-modp1024", False, "transport")
    spd = policies(sc, r.address, p.address, behind_racoon=True)
    r.host.run([str(SETKEY), "-c"], input=spd).check()
    p.setkey("-c", stdin=policies(sc, p.address, r.address, behind_racoon=False))
    procs: list[Proc] = []
    try:
        procs.append(start_racoon(r))
        procs.append(p.start_daemon())
        up = r.wait_log("used as isakmp port", 30) and pyracoon_ready(p)
        s = Session(r, p)
        assert up, s.explain()
        r.host.run(f"ping -c 1 -W 1 {p.address}", timeout=10)
        ok = wait_until(
            lambda: all(h.log_text().count("IPsec-SA established") >= 2 for h in (r, p)), 40
        )
        assert ok and len(s.sad()) == 2, s.explain()
        yield s
    finally:
        for proc in procs:
            if proc.running():
                proc.signal()
        for proc in procs:
            if proc.wait(10) is None:
                proc.stop()
        r.daemon = p.daemon = None


def same_output(s: Session, *args: str) -> str:
    """pyracoonctl's output for ``args``, asserted equal (clock masked) to racoonctl's just
    before or just after it: racoon's timers move on their own (a 20 s one re-arms with a new
    index and xtime), so one of the two brackets the same state. Returns pyracoonctl's text."""
    before, ours = s.both(*args)
    after = s.ctl(RACOONCTL, *args)
    why = s.explain(before, ours, after)
    assert before.rc == 0 and ours.rc == 0, why
    assert masked(ours.stdout) in (masked(before.stdout), masked(after.stdout)), why
    assert ours.stderr == "", why
    return ours.stdout


def test_show_sa_isakmp(session: Session) -> None:
    r, p = session.r, session.p
    out = same_output(session, "show-sa", "isakmp")
    lines = out.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{p.address}.500 "), out
    out = same_output(session, "-l", "show-sa", "isakmp")
    assert re.search(r" 9 I 10 M DATE +1 $", masked(out).splitlines()[1]), out
    out = same_output(session, "-l", "-l", "show-sa", "isakmp")
    assert masked(out).splitlines()[1].startswith(f"{r.address}.500 "), out


def test_show_sa_esp(session: Session) -> None:
    out = same_output(session, "show-sa", "esp")
    for sa in session.sad():
        assert f"{sa.src} {sa.dst}" in out, out
        spi = int(sa.spi, 16)
        assert f"spi={spi}({sa.spi[:2]}{spi:08x})" in out, out


def test_show_schedule(session: Session) -> None:
    out = same_output(session, "show-schedule")
    assert out.splitlines()[0] == "index    tick     xtime    created", out
    assert len(out.splitlines()) > 1, out


def test_show_event_and_delete_sa_isakmp(session: Session) -> None:
    """Both clients listen to racoon's events while pyracoonctl deletes the ISAKMP SA: racoon
    forgets the SA (and, as its purge_remote does, the IPsec SAs it carried: the kernel's SAD
    empties), and both clients print the event."""
    r, p = session.r, session.p
    listeners = [
        r.host.spawn(
            # racoonctl's stdout is a file here, block-buffered: line buffering (stdbuf) keeps
            # what it printed before timeout's SIGTERM ends it
            r.private(shlex.join(["timeout", "6", *STDBUF, str(c), "-s", SOCK, "show-event"])),
            name=f"show-event-{c.name}",
        )
        for c in (RACOONCTL, PYRACOONCTL)
    ]
    time.sleep(1.5)
    res = session.ctl(PYRACOONCTL, "delete-sa", "isakmp", "inet", r.address, p.address)
    assert res.rc == 0, session.explain(res)
    assert wait_until(lambda: "ISAKMP-SA deleted" in session.rlog(), 10), session.explain(res)
    for proc in listeners:
        proc.wait(15)
    theirs, ours = (proc.output() for proc in listeners)
    why = f"racoonctl:\n{theirs}\npyracoonctl:\n{ours}\n{session.explain(res)}"
    assert f"Phase 1 deleted : {r.address}[500] -> {p.address}[500]" in ours, why
    assert ours == theirs, why
    out = same_output(session, "show-sa", "isakmp")
    assert len(out.splitlines()) == 1, out  # the header only
    assert wait_until(lambda: not session.sad(), 10), session.explain(res)


def test_establish_sa_isakmp(session: Session) -> None:
    r, p = session.r, session.p
    before = session.rlog().count("ISAKMP-SA established")
    res = session.ctl(PYRACOONCTL, "establish-sa", "isakmp", "inet", r.address, p.address)
    why = session.explain(res)
    assert res.rc == 0 and res.stdout == "", why
    assert wait_until(lambda: session.rlog().count("ISAKMP-SA established") > before, 30), why
    out = same_output(session, "show-sa", "isakmp")
    assert len(out.splitlines()) == 2 and f"{p.address}.500 " in out, out


def establish_esp(s: Session, *, hard: int) -> None:
    """``pyracoonctl establish-sa esp`` for racoon's outbound policy: racoon runs a quick mode
    (two more SAs in its log), the kernel holds the pair with the sainfo's lifetime ``hard``,
    and both clients then print the same SAD."""
    r, p = s.r, s.p
    before = s.rlog().count("IPsec-SA established")
    res = s.ctl(
        PYRACOONCTL, "establish-sa", "esp", "inet", f"{r.address}/32", f"{p.address}/32", "any"
    )
    why = s.explain(res)
    assert res.rc == 0 and res.stdout == "", why
    assert wait_until(lambda: s.rlog().count("IPsec-SA established") >= before + 2, 30), why
    sad = s.sad()
    assert len(sad) == 2 and {sa.hard for sa in sad} == {hard}, s.explain(res)
    assert {(sa.src, sa.dst) for sa in sad} == {(r.address, p.address), (p.address, r.address)}, why
    same_output(s, "show-sa", "esp")


def test_establish_sa_esp(session: Session) -> None:
    """After delete-sa the kernel holds no SA: establish-sa esp brings the pair back over the
    ISAKMP SA that establish-sa isakmp made."""
    assert not session.sad(), session.explain()
    establish_esp(session, hard=180)


def test_flush_sa_esp(session: Session) -> None:
    assert session.sad(), session.explain()
    res = session.ctl(PYRACOONCTL, "flush-sa", "esp")
    assert res.rc == 0, session.explain(res)
    assert wait_until(lambda: not session.sad(), 10), session.explain(res)
    out = same_output(session, "show-sa", "esp")
    assert out.strip() == "No SAD entries.", out


def test_reload_config_then_establish_sa_esp(session: Session) -> None:
    """reload-config makes racoon read a changed racoon.conf (the sainfo lifetime 3 min -> 2
    min); ``establish-sa esp`` then negotiates for the outbound policy, and the kernel's new SAs
    carry the new lifetime: both commands really reached racoon."""
    r = session.r
    conf = r.etc / "racoon" / "racoon.conf"
    conf.write_text(re.sub(r"lifetime time [^;]+;", "lifetime time 2 min;", conf.read_text()))
    res = session.ctl(PYRACOONCTL, "reload-config")
    assert res.rc == 0 and res.stdout == "", session.explain(res)
    time.sleep(1)  # racoon reloads from its main loop, after the reply
    assert "config reload failed" not in session.rlog(), session.explain(res)
    establish_esp(session, hard=120)


def test_refusals_and_no_ops_as_racoonctl(session: Session) -> None:
    """racoon's answers that are no SA: both clients exit alike and print nothing on stdout;
    racoonctl says nothing at all, pyracoonctl one line on stderr naming racoon's errno
    (docs/admin.md).

    * establish-sa isakmp for the ISAKMP SA that is up: racoon answers ``EEXIST``, both exit 0;
    * establish-sa esp for traffic no policy covers: ``ENOENT`` (racoon's admin.c finds no
      outbound SP), both exit 1;
    * delete-sa isakmp for a peer without an SA: racoon deletes nothing and answers 0.
    """
    r, p = session.r, session.p
    nobody = "10.1.0.99"
    cases = (
        (
            ("establish-sa", "isakmp", "inet", r.address, p.address),
            0,
            "pyracoonctl: establish-sa: the SA is already established\n",
        ),
        (
            ("establish-sa", "esp", "inet", f"{r.address}/32", f"{nobody}/32", "any"),
            1,
            "pyracoonctl: establish-sa: No such file or directory (ENOENT)\n",
        ),
        (("delete-sa", "isakmp", "inet", r.address, nobody), 0, ""),
    )
    for args, rc, err in cases:
        theirs, ours = session.both(*args)
        why = f"{args}\n{session.explain(theirs, ours)}"
        assert (theirs.rc, theirs.stdout, theirs.stderr) == (rc, "", ""), why
        assert (ours.rc, ours.stdout, ours.stderr) == (rc, "", err), why
    assert f"admin delete-sa {r.address}[0] {nobody}[0]" in session.rlog(), session.explain()
    out = same_output(session, "show-sa", "isakmp")  # the SA with pyracoon is still there
    assert len(out.splitlines()) == 2 and f"{p.address}.500 " in out, out
