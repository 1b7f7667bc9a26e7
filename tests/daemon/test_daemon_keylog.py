"""``pyracoon --ike-keylog``: Wireshark's ikev1_decryption_table rows, 0600, with a WARNING."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from test_daemon_e2e import Pair


def rows(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_both_daemons_log_the_same_cookie_and_key(short_tmp: Path) -> None:
    p = Pair(short_tmp)
    try:
        p.configure("main", "psk")
        a, b = p.hosts
        a.start_daemon(a.dir / "racoon.conf", "-p", str(p.port), "--ike-keylog", str(a.dir / "k"))
        b.start_daemon(b.dir / "racoon.conf", "-p", str(p.port))  # b without the option
        for h in p.hosts:
            assert h.wait_log("admin socket"), p.why(h)
        p.packet()
        p.wait_established()
    finally:
        p.stop()
    keylog = a.dir / "k"
    assert stat.S_IMODE(keylog.stat().st_mode) == 0o600
    [row] = rows(keylog)
    icookie, key = row.split(",")
    # the cookie of the ISAKMP SA both logged; aes 256 (config_text's proposal): 32 bytes
    established = a.log_lines("ISAKMP-SA established")[0]
    assert re.search(rf"spi:{icookie}:[0-9a-f]{{16}}", established), established
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert a.log_lines("WARNING: --ike-keylog")
    assert not b.log_lines("--ike-keylog") and not (b.dir / "k").exists()
    assert key not in a.log_path.read_text()  # the key goes to the key log only
