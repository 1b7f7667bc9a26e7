"""ike-scan against a pyracoon responder: an outside view of proposal selection and PSK auth.

* Main mode with several ``--trans`` transform sets, of which our configuration accepts exactly
  one: the SA ike-scan reports back must be that transform (and with none acceptable, the answer
  is NO-PROPOSAL-CHOSEN).
* Aggressive mode PSK with ``--pskcrack``: ike-scan saves the responder's g^xr, g^xi, cookies,
  SA, IDs, nonces and HASH_R; ``psk-crack`` then tries a small dictionary.  It recovers the key
  only if our SKEYID and HASH_R (RFC 2409 5) are computed as ike-scan's own code computes them:
  an independent check, written by someone else, of our PSK arithmetic.

Everything a test starts is stopped by pid; the capture of each run goes through tshark too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import Certs, require
from interop_lab import NetnsPair, Pyracoon
from interop_tshark import Capture, check_capture

ACCEPTED = "encryption_algorithm aes 128; hash_algorithm sha1; dh_group 5;"
# ike-scan --trans=enc[/bits],hash,auth,group: 5 = 3DES, 7 = AES; 1 = MD5, 2 = SHA1, 4 = SHA-256;
# auth 1 = PSK
OFFERED = ["5,2,1,2", "7/256,4,1,14", "7/128,2,1,5", "7/128,1,1,5"]
DICTIONARY = ["password", "letmein", "racoon", "interop-sesame-42", "kame", "ipsec-tools"]
SECRET = "interop-sesame-42"


def ike_scan(net: NetnsPair, *args: str) -> str:
    r = subprocess.run(
        ["ip", "netns", "exec", net.b, "ike-scan", "--retry=2", "--timeout=1000", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return r.stdout + r.stderr


def responder(net: NetnsPair, tmp: Path, certs: Certs, mode: str, proposal: str) -> Pyracoon:
    pyr = Pyracoon(net.a, "10.77.0.1", tmp / "p")
    try:
        pyr.install(certs.ca, certs.pyracoon, "10.77.0.2")
        (pyr.dir / "psk.txt").write_text(f"10.77.0.2\t{SECRET}\n")
        conf = pyr.write_config(
            "remote anonymous {\n"
            f"    exchange_mode {mode};\n"
            f"    proposal {{ {proposal} authentication_method pre_shared_key; }}\n"
            "}\n"
        )
        pyr.start(conf)
    except BaseException:
        pyr.stop()
        raise
    return pyr


@pytest.fixture
def tools() -> None:
    require("ike-scan", "psk-crack")


@pytest.mark.usefixtures("tools")
def test_main_mode_gets_back_the_transform_we_accept(
    net: NetnsPair, tmpdir_short: Path, certs: Certs, record: list[dict]
) -> None:
    cap = Capture(net.a, net.veth_a, tmpdir_short / "ike.pcap")
    cap.start()
    try:
        pyr = responder(net, tmpdir_short, certs, "main", ACCEPTED)
    except BaseException:
        cap.stop()
        raise
    try:
        out = ike_scan(net, *(f"--trans={t}" for t in OFFERED), "10.77.0.1")
        assert "1 returned handshake" in out, out + pyr.why()
        sa = re.search(r"SA=\(([^)]*)\)", out)
        assert sa, out
        assert "Enc=AES" in sa.group(1) and "KeyLength=128" in sa.group(1), out
        assert "Hash=SHA1" in sa.group(1) and "Group=5:modp1536" in sa.group(1), out
        assert "Auth=PSK" in sa.group(1), out
        # none acceptable: a NO-PROPOSAL-CHOSEN notification, and pyracoon keeps serving
        out = ike_scan(net, "--trans=5,2,1,2", "--trans=7/256,4,1,14", "10.77.0.1")
        assert "NO-PROPOSAL-CHOSEN" in out, out + pyr.why()
        assert pyr.alive(), pyr.why()
        cap.stop()
        check_capture(cap.path, pyr.keylog_path, quick_mode=False, encrypted=False)
    finally:
        cap.stop()
        pyr.stop()
    record.append(
        {
            "peer": "ike-scan",
            "version": tool_version(),
            "mode": "main",
            "auth": "psk",
            "family": "IPv4",
            "suite": "aes128-sha1-modp1536 chosen of 4 offered",
            "pfs": "-",
            "encap": "-",
            "role": "pyracoon responds",
            "checks": "returned transform = the one configured; NO-PROPOSAL-CHOSEN otherwise",
        }
    )


@pytest.mark.usefixtures("tools")
def test_aggressive_psk_hash_cracked_by_psk_crack(
    net: NetnsPair, tmpdir_short: Path, certs: Certs, record: list[dict]
) -> None:
    cap = Capture(net.a, net.veth_a, tmpdir_short / "ike.pcap")
    cap.start()
    try:
        pyr = responder(
            net,
            tmpdir_short,
            certs,
            "aggressive",
            "encryption_algorithm 3des; hash_algorithm sha1; dh_group 2;",
        )
    except BaseException:
        cap.stop()
        raise
    params = tmpdir_short / "psk-params"
    try:
        # ID_IPV4_ADDR 10.77.0.2 (0x0a4d0002): the PSK file's key is found by it
        out = ike_scan(
            net, "--aggressive", "--id=0x0a4d0002", "--idtype=1", "--dhgroup=2",
            "--trans=5,2,1,2", f"--pskcrack={params}", "10.77.0.1",
        )  # fmt: skip
        assert "Aggressive Mode Handshake returned" in out, out + pyr.why()
        assert params.exists() and params.read_text().strip(), out
        words = tmpdir_short / "dictionary"
        words.write_text("\n".join(DICTIONARY) + "\n")
        r = subprocess.run(
            ["psk-crack", "-d", str(words), str(params)], capture_output=True, text=True, timeout=60
        )
        assert f'key "{SECRET}" matches' in r.stdout, r.stdout + r.stderr
        # the control: a dictionary without the key finds nothing
        words.write_text("\n".join(w for w in DICTIONARY if w != SECRET) + "\n")
        r = subprocess.run(
            ["psk-crack", "-d", str(words), str(params)], capture_output=True, text=True, timeout=60
        )
        assert "matches" not in r.stdout and "no match" in r.stdout.lower(), r.stdout
        cap.stop()
        check_capture(cap.path, pyr.keylog_path, quick_mode=False, encrypted=False)
    finally:
        cap.stop()
        pyr.stop()
    record.append(
        {
            "peer": "ike-scan + psk-crack",
            "version": tool_version(),
            "mode": "aggressive",
            "auth": "psk",
            "family": "IPv4",
            "suite": "3des-sha1-modp1024",
            "pfs": "-",
            "encap": "-",
            "role": "pyracoon responds",
            "checks": "psk-crack recovers the key from our HASH_R",
        }
    )


def tool_version() -> str:
    r = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "ike-scan"], capture_output=True, text=True
    )
    return r.stdout.strip() or "unknown"
