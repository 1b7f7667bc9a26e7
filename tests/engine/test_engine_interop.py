"""Our engine against strongSwan's charon (IKEv1) over real UDP, in two network namespaces.

Skips unless run as root with charon, swanctl, openssl and ip available.  Uses the project's
interop scripts (/work/shared/interop) with namespaces of its own (pyeA/pyeB).  Our side runs
``udp_driver.py`` (an Engine on a UDP socket, an in-memory kernel); charon runs without an ESP
kernel, so it derives and logs the quick-mode keys and then deletes the CHILD_SA it cannot
install -- enough to compare every key both ways.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyracoon.pki import CaDirectory

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPTS = Path(os.environ.get("PYRACOON_INTEROP", "/work/shared/interop"))
RESPONDER = SCRIPTS / "strongswan-responder.sh"
NS_A, NS_B = "pyeA", "pyeB"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not RESPONDER.exists()
    or not all(shutil.which(t) for t in ("ip", "swanctl", "openssl"))
    or not Path("/usr/lib/ipsec/charon").exists(),
    reason="needs root, strongSwan charon/swanctl, openssl, ip and the interop scripts",
)


def sh(*args: str, check: bool = True) -> str:
    r = subprocess.run([str(RESPONDER), *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: {r.stdout}\n{r.stderr}")
    return r.stdout


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    sh("mkcerts", str(d))
    CaDirectory(d).link("ca.crt")
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return d


@pytest.fixture
def namespaces():  # type: ignore[no-untyped-def]
    sh("netns-down", "--ns-a", NS_A, "--ns-b", NS_B, check=False)
    sh("netns-up", "--ns-a", NS_A, "--ns-b", NS_B)
    try:
        yield
    finally:
        for ns in (NS_A, NS_B):
            sh("stop", "--ns", ns, "--state", f"/tmp/sswan-{ns}", check=False)
        sh("netns-down", "--ns-a", NS_A, "--ns-b", NS_B, check=False)
        for ns in (NS_A, NS_B):
            shutil.rmtree(f"/tmp/sswan-{ns}", ignore_errors=True)


def our_conf(
    tmp: Path,
    peer: str,
    mode: str,
    auth: str,
    pfs: bool,
    certs: Path,
    me: str,
    p1: str = "3des; hash_algorithm sha1; dh_group modp1024",
    p2: str = "3des; authentication_algorithm hmac_sha1",
) -> Path:
    cert = ""
    if auth == "rsasig":
        cert = f"""
    certificate_type x509 "host{me}.crt" "host{me}.key";
    my_identifier asn1dn;"""
    text = f"""path certificate "{certs}";
remote {peer} {{
    exchange_mode {mode};{cert}
    proposal {{ encryption_algorithm {p1};
               authentication_method {auth}; }}
}}
sainfo anonymous {{ {"pfs_group modp1024;" if pfs else ""}
    encryption_algorithm {p2};
    compression_algorithm deflate; }}
"""
    path = tmp / "racoon.conf"
    path.write_text(text)
    return path


def driver(
    ns: str,
    conf: Path,
    local: str,
    peer: str,
    seconds: float,
    initiate: bool,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[str]:
    cmd = [
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        str(HERE / "udp_driver.py"),
        str(conf),
        local,
        peer,
        str(seconds),
    ]
    if initiate:
        cmd.append("--initiate")
    cmd += list(extra)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def fake_kernel() -> bool:
    """Build (once) the no-op kernel plugin that lets charon complete quick mode here."""
    builder = SCRIPTS / "charon-fake-kernel.sh"
    if not builder.exists():
        return False
    r = subprocess.run([str(builder)], capture_output=True, text=True, timeout=300)
    return r.returncode == 0


def charon_keys(ns: str) -> dict[str, str]:
    out = sh("keys", "--ns", ns, "--state", f"/tmp/sswan-{ns}")
    keys = {}
    for line in out.splitlines():
        for label in (
            "encryption initiator key",
            "encryption responder key",
            "integrity initiator key",
            "integrity responder key",
        ):
            if line.startswith(label):
                keys[label] = line[len(label) :].strip()
    return keys


def check(result: dict, keys: dict[str, str], we_initiate: bool, me: str) -> None:
    assert result["established"], "\n".join(result["logs"])
    outbound = next(s for s in result["sas"] if s["src"] == me)
    inbound = next(s for s in result["sas"] if s["dst"] == me)
    mine, theirs = ("initiator", "responder") if we_initiate else ("responder", "initiator")
    assert outbound["ekey"] == keys[f"encryption {mine} key"]
    assert outbound["akey"] == keys[f"integrity {mine} key"]
    assert inbound["ekey"] == keys[f"encryption {theirs} key"]
    assert inbound["akey"] == keys[f"integrity {theirs} key"]


CASES = [
    ("main", "pre_shared_key", False),
    ("aggressive", "pre_shared_key", True),
    ("main", "rsasig", True),
    ("aggressive", "rsasig", False),
]


@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("mode,auth,pfs", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_we_initiate_charon_responds(
    tmp_path: Path, certs: Path, mode: str, auth: str, pfs: bool
) -> None:
    sh(
        "start",
        "--ns",
        NS_B,
        "--addr",
        "10.77.0.2",
        "--state",
        f"/tmp/sswan-{NS_B}",
        "--certs",
        str(certs),
        "--auth",
        "psk" if auth == "pre_shared_key" else "rsasig",
    )
    conf = our_conf(tmp_path, "10.77.0.2", mode, auth, pfs, certs, "A")
    proc = driver(NS_A, conf, "10.77.0.1", "10.77.0.2", 15, True)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    check(json.loads(out), charon_keys(NS_B), True, "10.77.0.1")


@pytest.mark.usefixtures("namespaces")
def test_aes_sha2_suite(tmp_path: Path, certs: Path) -> None:
    """Key-Length attributes, SHA-256 prf and hmac-sha256 (128-bit ICV key) with charon."""
    sh(
        "start",
        "--ns",
        NS_B,
        "--addr",
        "10.77.0.2",
        "--state",
        f"/tmp/sswan-{NS_B}",
        "--certs",
        str(certs),
        "--auth",
        "psk",
        "--ike",
        "aes256-sha256-modp2048",
        "--esp",
        "aes128-sha256",
    )
    conf = our_conf(
        tmp_path,
        "10.77.0.2",
        "main",
        "pre_shared_key",
        False,
        certs,
        "A",
        p1="aes 256; hash_algorithm sha256; dh_group modp2048",
        p2="aes 128; authentication_algorithm hmac_sha256",
    )
    proc = driver(NS_A, conf, "10.77.0.1", "10.77.0.2", 15, True)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    result = json.loads(out)
    check(result, charon_keys(NS_B), True, "10.77.0.1")
    assert {len(s["ekey"]) for s in result["sas"]} == {32} and {
        s["auth"] for s in result["sas"]
    } == {5}


@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("mode,auth,pfs", CASES[:3], ids=["-".join(map(str, c)) for c in CASES[:3]])
def test_charon_initiates_we_respond(
    tmp_path: Path, certs: Path, mode: str, auth: str, pfs: bool
) -> None:
    if not fake_kernel():
        pytest.skip(
            "charon cannot complete quick mode as initiator without an ESP kernel, "
            "and the fake-kernel plugin could not be built"
        )
    conf = our_conf(tmp_path, "10.77.0.1", mode, auth, pfs, certs, "B")
    proc = driver(NS_B, conf, "10.77.0.2", "10.77.0.1", 15, False)
    args = [
        "start",
        "--role",
        "initiator",
        "--ns",
        NS_A,
        "--addr",
        "10.77.0.1",
        "--peer",
        "10.77.0.2",
        "--state",
        f"/tmp/sswan-{NS_A}",
        "--certs",
        str(certs),
        "--auth",
        "psk" if auth == "pre_shared_key" else "rsasig",
        "--fake-kernel",
    ]
    if mode == "aggressive":
        args.append("--aggressive")
    if pfs:
        args += ["--esp", "3des-sha1-modp1024"]
    sh(*args)
    sh("initiate", "--ns", NS_A, "--state", f"/tmp/sswan-{NS_A}", "--timeout", "10", check=False)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    check(json.loads(out), charon_keys(NS_A), False, "10.77.0.2")


@pytest.mark.usefixtures("namespaces")
def test_tunnel_mode_with_subnets(tmp_path: Path, certs: Path) -> None:
    """Tunnel mode between 192.168.1.0/24 and 192.168.2.0/24: subnet IDs, mode 1."""
    sh(
        "start",
        "--ns",
        NS_B,
        "--addr",
        "10.77.0.2",
        "--state",
        f"/tmp/sswan-{NS_B}",
        "--certs",
        str(certs),
        "--auth",
        "psk",
        "--mode",
        "tunnel",
        "--local-ts",
        "192.168.2.0/24",
        "--remote-ts",
        "192.168.1.0/24",
    )
    conf = our_conf(tmp_path, "10.77.0.2", "main", "pre_shared_key", True, certs, "A")
    proc = driver(
        NS_A,
        conf,
        "10.77.0.1",
        "10.77.0.2",
        15,
        True,
        ("--tunnel", "192.168.1.0/24", "192.168.2.0/24"),
    )
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    result = json.loads(out)
    check(result, charon_keys(NS_B), True, "10.77.0.1")
    assert {s["mode"] for s in result["sas"]} == {2}  # SADB tunnel
    log = (Path(f"/tmp/sswan-{NS_B}") / "charon.log").read_text()
    assert "192.168.1.0/24 === 192.168.2.0/24" in log or "192.168.2.0/24 === 192.168.1.0/24" in log


@pytest.mark.usefixtures("namespaces")
def test_dpd_probes_answered_by_charon(tmp_path: Path, certs: Path) -> None:
    """Our R-U-THERE (cookies as SPI, 32-bit sequence) is understood and acknowledged."""
    args = ["start", "--ns", NS_B, "--addr", "10.77.0.2", "--state", f"/tmp/sswan-{NS_B}",
            "--certs", str(certs), "--auth", "psk"]  # fmt: skip
    if fake_kernel():
        args.append("--fake-kernel")  # so that charon does not delete the CHILD_SA
    sh(*args)
    conf = our_conf(tmp_path, "10.77.0.2", "main", "pre_shared_key", False, certs, "A")
    conf.write_text(
        conf.read_text().replace("exchange_mode main;", "exchange_mode main; dpd_delay 1;")
    )
    proc = driver(NS_A, conf, "10.77.0.1", "10.77.0.2", 15, True, ("--linger", "2.5"))
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    logs = json.loads(out)["logs"]
    assert any("DPD R-U-THERE-ACK received" in line for line in logs), "\n".join(logs)
