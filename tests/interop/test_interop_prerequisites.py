"""A charon that cannot do the suites is a missing prerequisite, said so with charon's log.

Debian's strongswan-charon only Recommends libstrongswan-standard-plugins, which holds the
openssl plugin; installed with --no-install-recommends, charon has no 3DES or AES, answers
INVALID-KEY-INFORMATION, and every charon test fails with a message about pyracoon. These tests
make such a charon and check that it is reported as what it is: a skip locally, a failure in CI
whose message carries charon's own log.
"""

from __future__ import annotations

from pathlib import Path

import conftest
import interop_charon
import interop_lab
import pytest
from interop_charon import REQUIRED_PLUGINS, Charon, loaded_plugins, missing_plugins
from interop_lab import V4

STATS = """\
uptime: 1 second, since Dec 02 04:00:00 2026
worker threads: 16 total, 11 idle, working: 4/0/1/0
IKE_SAs: 0 total, 0 half-open
loaded plugins: charon random nonce pem pkcs1 pkcs8 x509 revocation constraints pubkey sha1
"""


def test_missing_plugins_are_read_from_swanctl_stats() -> None:
    assert loaded_plugins(STATS)[:3] == ["charon", "random", "nonce"]
    assert missing_plugins(STATS, ["random", "openssl", "sha1", "vici"]) == ["openssl", "vici"]
    assert missing_plugins("no such line\n", ["openssl"]) == ["openssl"]


def set_in_ci(monkeypatch: pytest.MonkeyPatch, in_ci: bool, unavailable: object) -> None:
    """Make ``unavailable`` skip (False) or fail (True), by setting IN_CI in the very globals it
    reads: in a full run the helper modules can be loaded twice under one name (pytest's
    conftest and the lab's sys.path both reach tests/interop), and patching the copy this module
    imported then leaves the other's IN_CI, the environment's, in force."""
    monkeypatch.setattr(interop_lab, "IN_CI", in_ci)
    monkeypatch.setitem(unavailable.__globals__, "IN_CI", in_ci)  # type: ignore[attr-defined]


@pytest.mark.parametrize("in_ci", [False, True])
def test_a_plugin_file_missing_is_a_missing_prerequisite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_ci: bool
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in REQUIRED_PLUGINS:
        if name != "openssl":
            (plugins / f"libstrongswan-{name}.so").touch()
    (tmp_path / "charon").touch()
    monkeypatch.setattr(conftest, "require", lambda *tools: None)
    monkeypatch.setattr(conftest, "CHARON", tmp_path / "charon")
    monkeypatch.setattr(conftest, "PLUGINDIR", plugins)
    set_in_ci(monkeypatch, in_ci, conftest.unavailable)
    kind = pytest.fail.Exception if in_ci else pytest.skip.Exception
    with pytest.raises(kind) as info:
        conftest.require_charon()
    assert "openssl" in str(info.value) and "libstrongswan-standard-plugins" in str(info.value)


@pytest.mark.parametrize("in_ci", [False, True])
def test_a_charon_without_its_openssl_plugin_is_reported_with_its_log(
    net: interop_lab.NetnsPair,
    tmpdir_short: Path,
    certs: conftest.Certs,
    fake_kernel: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_ci: bool,
) -> None:
    """The machine of the report, made on purpose: the plugin file absent from charon's view."""
    sc = interop_lab.Scenario("main", "psk", 4, "3des-sha1-modp1024", False, "transport")
    charon = Charon(
        net.b, tmpdir_short / "c", V4[1], V4[0], fake_kernel, without_plugins=("openssl",)
    )
    charon.configure(sc, initiator=False, ca=certs.ca, me=certs.peer)
    set_in_ci(monkeypatch, in_ci, interop_charon.unavailable)
    kind = pytest.fail.Exception if in_ci else pytest.skip.Exception
    try:
        with pytest.raises(kind) as info:
            charon.start()
    finally:
        charon.stop()
    message = str(info.value)
    assert "charon did not load plugin(s) openssl" in message
    assert "libstrongswan-standard-plugins" in message
    if in_ci:  # the failure carries charon's side of the story
        assert "loaded plugins:" in message and "charon log:" in message
    assert interop_charon.report_sections()[0][0].startswith(f"charon log ({V4[1]}")
