"""Capture pyracoon's IKE traffic with dumpcap, then make tshark dissect and decrypt all of it.

Decryption uses Wireshark's ``ikev1_decryption_table`` UAT: the file pyracoon's ``--ike-keylog``
wrote becomes that file, unchanged, in a profile under a HOME of the test's own (so no
Wireshark profile on the machine is read or written).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from interop_lab import IN_CI, stop_pid, tool_missing


class Capture:
    """dumpcap on one interface of one namespace."""

    def __init__(self, ns: str, iface: str, path: Path) -> None:
        self.ns, self.iface, self.path = ns, iface, path
        self.proc: subprocess.Popen | None = None

    @property
    def available(self) -> bool:
        return not tool_missing("dumpcap", "tshark")

    def start(self) -> None:
        if not self.available:
            return
        # No capture filter: a "udp port 500" filter would drop the IP fragments of a large
        # message (an aggressive-mode reply with a certificate exceeds 1500 bytes), and the
        # namespaces carry nothing but this test's traffic anyway.
        self.err = self.path.with_suffix(".dumpcap")
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "dumpcap", "-i", self.iface, "-w", str(self.path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        # dumpcap says "File: ..." once the capture runs
        deadline = time.monotonic() + 10
        while "File:" not in self.err.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dumpcap did not start: {self.err.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            time.sleep(0.3)  # the last datagrams still in flight
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)  # dumpcap's clean end, as Ctrl-C
            stop_pid(self.proc)
            self.proc = None


def profile_home(pcap: Path, keylog: Path | None) -> Path:
    """A HOME whose Wireshark profile holds ``keylog`` as its ``ikev1_decryption_table``.

    The key log file is used as it is -- header comment and all -- so this also checks that it
    is a valid UAT file.  Without a key log the profile is empty: no user profile is ever read.
    """
    home = pcap.parent / ("tshark-home-keys" if keylog is not None else "tshark-home-none")
    conf = home / ".config" / "wireshark"
    conf.mkdir(parents=True, exist_ok=True)
    table = conf / "ikev1_decryption_table"
    if keylog is not None:
        table.write_text(keylog.read_text())
    return home


def tshark(pcap: Path, keylog: Path | None, *extra: str) -> str:
    home = profile_home(pcap, keylog)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    r = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), *extra],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Error loading table" not in r.stderr, r.stderr  # a UAT file it could not parse
    return r.stdout + r.stderr


def retransmissions(pcap: Path) -> list[int]:
    """Frames whose UDP payload repeats an earlier frame's byte for byte.

    Wireshark cannot decrypt these: it takes the IV of an encrypted IKEv1 message from the last
    block of the previous one in the same exchange, which for a retransmission is the original
    copy, not what we (correctly, RFC 2409 appendix B) used.  So they are left out of the checks;
    the original copy is checked.
    """
    seen: set[str] = set()
    again = []
    out = tshark(pcap, None, "-Y", "isakmp", "-T", "fields", "-e", "frame.number",
                 "-e", "udp.payload")  # fmt: skip
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].isdigit():
            continue
        if cols[1] in seen:
            again.append(int(cols[0]))
        seen.add(cols[1])
    return again


def not_frames(frames: list[int]) -> list[str]:
    """A display filter leaving ``frames`` out (all frames are still dissected, in order)."""
    return ["-Y", f"not frame.number in {{{' '.join(map(str, frames))}}}"] if frames else []


def encrypted_rows(
    pcap: Path, keylog: Path | None, skip: list[int]
) -> list[tuple[str, int, list[str]]]:
    """(exchange type, flags, payload types tshark dissected) of each encrypted message."""
    fields = tshark(
        pcap, keylog, *not_frames(skip), "-T", "fields", "-E", "occurrence=a",
        "-E", "aggregator=,",
        "-e", "isakmp.exchangetype", "-e", "isakmp.flags", "-e", "isakmp.typepayload",
    )  # fmt: skip
    rows = []
    for line in fields.splitlines():
        cols = line.split("\t")
        if len(cols) < 3 or not cols[1].strip():
            continue
        flags = int(cols[1].split(",")[0], 16)
        if flags & 1:
            rows.append((cols[0].split(",")[0], flags, [t for t in cols[2].split(",") if t]))
    return rows


def check_capture(pcap: Path, keylog: Path, *, quick_mode: bool, encrypted: bool = True) -> str:
    """Every packet dissects cleanly and the encrypted ones decrypt; returns the verbose text.

    ``encrypted=False`` for exchanges that never get as far as an encrypted message (ike-scan).
    """
    if not pcap.exists():
        # no dumpcap/tshark here: the key comparison still ran; CI has them and must check
        assert not IN_CI, "tshark/dumpcap missing in CI"
        return ""
    skip = retransmissions(pcap)
    verbose = tshark(pcap, keylog, "-V", *not_frames(skip))
    assert "isakmp" in verbose.lower(), verbose
    for bad in ("Malformed", "Expert Info (Error", "Expert Info (Warning", "Exception occurred"):
        assert bad not in verbose, f"tshark: {bad}\n{verbose}"
    # decrypted phase-1 payloads: main mode's ID and HASH/SIG travel encrypted, aggressive mode's
    # last message may, quick mode is all encrypted (its SA, Nonce and IDs become visible)
    if not encrypted:
        return verbose
    rows = encrypted_rows(pcap, keylog, skip)
    assert rows, "no encrypted ISAKMP message captured"
    undecrypted = [r for r in rows if not r[2]]
    assert not undecrypted, (
        f"tshark could not decrypt {undecrypted} of {rows}\nkey log:\n"
        f"{keylog.read_text()}\n{tshark(pcap, keylog)}"
    )
    # the control: without the table the same messages show no payloads at all
    assert all(not r[2] for r in encrypted_rows(pcap, None, skip)), "decryption needs no key?"
    if quick_mode:
        # quick mode (32) decrypted down to its SA payload (1)
        assert any(r[0] == "32" and "1" in r[2] for r in rows), tshark(pcap, keylog)
    return verbose
