"""The lab itself: it boots a real kernel with IPsec, joins hosts, runs commands, powers off."""

from __future__ import annotations

import subprocess

import pytest
from labtest import lab_unavailable

from pyracoon.kernellab import KernelLab, LabError, unavailable_reason


def test_the_lab_kernel_has_pfkey_xfrm_and_esp(lab: KernelLab) -> None:
    assert lab.missing_modules == []
    r = lab.run("uname -r; grep -E '^(af_key|xfrm_user|esp4|esp6) ' /proc/modules | cut -d' ' -f1")
    assert r.ok
    lines = r.stdout.split()
    assert lines[0].startswith("6.")
    assert sorted(lines[1:]) == ["af_key", "esp4", "esp6", "xfrm_user"]


def test_hosts_on_the_bridge_reach_each_other_over_ipv4_and_ipv6(lab: KernelLab) -> None:
    a = lab.add_host("a", "10.1.0.1/24", "2001:240:7:101:260:1dff:fef2:7648/64")
    lab.add_host("b", "10.1.0.2/24", "2001:240:7:101::6/64")
    assert a.run("ping -c 1 -W 2 10.1.0.2").ok
    assert a.run("ping -c 1 -W 2 2001:240:7:101::6").ok
    assert a.run("ip -o addr show dev eth0").stdout.count("inet") == 3  # v4, v6, link-local


def test_a_spawned_process_is_stopped_and_its_output_kept(lab: KernelLab) -> None:
    p = lab.spawn("echo started; exec sleep 600", name="sleeper")
    assert p.wait_output("started", 10)
    assert p.running()
    p.stop(5)
    assert p.rc is not None and not p.running()
    assert "started" in p.output()


def test_a_failing_command_reports_its_status_and_output(lab: KernelLab) -> None:
    r = lab.run("echo out; echo err >&2; exit 3")
    assert (r.rc, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(LabError, match="exit 3"):
        r.check()
    assert lab.run("sleep 5", timeout=0.5).timed_out


def test_close_powers_the_kernel_off_and_removes_its_files() -> None:
    if unavailable_reason():
        lab_unavailable(str(unavailable_reason()))
    lab = KernelLab()
    lab.boot()
    uml = lab._uml
    assert uml is not None
    lab.close()
    assert uml.poll() is not None
    assert not lab.dir.exists()
    left = subprocess.run(["pgrep", "-f", str(lab.dir)], capture_output=True, text=True)
    assert left.stdout == ""
