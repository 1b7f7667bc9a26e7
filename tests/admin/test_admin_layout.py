"""pyracoon's C struct layouts (``pyracoon.admin.clayout``) against gcc compiling racoon's own
headers: every member's offset and size, and every struct's size.

racoon and racoonctl put these structs on the admin socket as they lie in memory, so an offset
that differs by the compiler's padding is a request racoon refuses or a reply racoonctl prints
as garbage. The headers come from ipsec-tools' source tree, which tests/interop/build-racoon.sh
keeps in ``$RACOON_PREFIX/include/racoon-src``; without them (and gcc) the comparison is
skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pyracoon.admin import clayout
from pyracoon.admin.protocol import INDEX_LEN
from pyracoon.admin.records import EVT_ASYNC_LEN, PH1DUMP_LEN, SCHEDDUMP_LEN

HEADERS = Path(os.environ.get("RACOON_PREFIX", "/var/tmp/racoon-0.9.1")) / "include/racoon-src"

STRUCTS: dict[str, type[ctypes.Structure]] = {
    "sockaddr_storage": clayout.CSockaddrStorage,
    "admin_com_indexes": clayout.CAdminComIndexes,
    "ph1dump": clayout.CPh1Dump,
    "scheddump": clayout.CSchedDump,
    "evt_async": clayout.CEvtAsync,
}
# glibc's private names of sockaddr_storage's members, and ours
C_MEMBER = {("sockaddr_storage", "ss_padding"): "__ss_padding",
            ("sockaddr_storage", "ss_align"): "__ss_align"}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the numbers of x86-64")
def test_x86_64_sizes() -> None:
    """What racoonctl on x86-64 needs: sockaddr_storage is 8-byte aligned, so the index's
    source address starts at 8, after prefs, prefd, ul_proto, reserved and 4 bytes of padding."""
    assert clayout.CAdminComIndexes.src.offset == 8
    assert clayout.CAdminComIndexes.dst.offset == 136
    assert INDEX_LEN == 264
    assert (PH1DUMP_LEN, SCHEDDUMP_LEN, EVT_ASYNC_LEN) == (304, 32, 280)
    assert clayout.CPh1Dump.remote.offset == 24 and clayout.CPh1Dump.created.offset == 288
    assert clayout.CEvtAsync.ec_timestamp.offset == 8


def _headers() -> Path:
    gcc = shutil.which("gcc")
    if gcc and (HEADERS / "handler.h").is_file():
        return HEADERS
    why = (f"gcc and racoon's headers in {HEADERS} are needed "
           "(tests/interop/build-racoon.sh puts them there)")
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _program(headers: Path) -> str:
    """A C program printing ``STRUCT MEMBER OFFSET SIZE`` and ``STRUCT - - SIZE`` lines."""
    handler = (headers / "handler.h").read_text()
    found = re.search(r"struct ph1dump \{.*?\};", handler, re.S)
    assert found, "no struct ph1dump in racoon's handler.h"
    lines = [
        "#include <sys/types.h>", "#include <sys/socket.h>", "#include <sys/queue.h>",
        "#include <sys/time.h>", "#include <netinet/in.h>", "#include <stdint.h>",
        "#include <stddef.h>", "#include <stdio.h>", "#include <time.h>",
        '#include "admin.h"', '#include "schedule.h"', '#include "isakmp_var.h"',
        '#include "evt.h"',
        "/* handler.h needs the whole of racoon: its struct ph1dump, verbatim */",
        found.group(0),
        "#define M(s, m, c) printf(\"%s %s %zu %zu\\n\", #s, #m, offsetof(struct s, c), "
        "sizeof(((struct s *)0)->c));",
        "int main(void) {",
    ]
    for name, cls in STRUCTS.items():
        for member, _ in cls._fields_:
            lines.append(f"M({name}, {member}, {C_MEMBER.get((name, member), member)})")
        lines.append(f'printf("{name} - - %zu\\n", sizeof(struct {name}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


def test_layouts_match_gcc_on_racoons_headers(tmp_path: Path) -> None:
    headers = _headers()
    source = tmp_path / "layout.c"
    source.write_text(_program(headers))
    binary = tmp_path / "layout"
    cc = subprocess.run(["gcc", "-I", str(headers), "-o", str(binary), str(source)],
                        capture_output=True, text=True, timeout=60)
    assert cc.returncode == 0, cc.stderr
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=10).stdout
    expected = []
    for name, cls in STRUCTS.items():
        for member, _ in cls._fields_:
            field = getattr(cls, member)
            expected.append(f"{name} {member} {field.offset} {field.size}")
        expected.append(f"{name} - - {ctypes.sizeof(cls)}")
    assert out.splitlines() == expected
