"""setkey and pysetkey on one kernel: each loads, both dump; what they said, as JSON.

Run inside the kernel lab (a PF_KEY socket needs a kernel with ``af_key``) by
``test_lab_setkey_reference.py``, so one boot serves every comparison:

    python setkey_reference.py SETKEY OUT.json load FILE... -- broken FILE...

For each ``load`` file and each loader (ipsec-tools' setkey, then pysetkey) the SAD and SPD are
flushed, the loader runs ``-f FILE``, and then each tool dumps ``-D`` and ``-DP``: four dumps
of one kernel state. For each ``broken`` file each tool runs ``-f FILE`` on an empty kernel and
setkey dumps what it left behind. Everything a tool printed is kept as it is; masking what
depends on time and processes is the test's business, so that what it masks stays in view.
"""

from __future__ import annotations

import json
import subprocess
import sys


def run(argv: list[str]) -> dict:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def main(argv: list[str]) -> int:
    setkey, out = argv[0], argv[1]
    rest = argv[2:]
    assert rest[0] == "load" and "--" in rest and rest[rest.index("--") + 1] == "broken"
    cut = rest.index("--")
    loads, broken = rest[1:cut], rest[cut + 2 :]
    tools = {"setkey": [setkey], "pysetkey": ["pysetkey", "--kernel", "pfkey"]}

    def empty() -> None:
        for flag in ("-F", "-FP"):
            subprocess.run([setkey, flag], check=True, capture_output=True)

    result: dict[str, list[dict]] = {"load": [], "broken": []}
    for name in loads:
        for loader, cmd in tools.items():
            empty()
            case = {"file": name, "loader": loader, "load": run([*cmd, "-f", name])}
            for flag in ("-D", "-DP"):
                for dumper, dcmd in tools.items():
                    case[f"{dumper} {flag}"] = run([*dcmd, flag])
            result["load"].append(case)
    for name in broken:
        for tool, cmd in tools.items():
            empty()
            case = {"file": name, "tool": tool, "load": run([*cmd, "-f", name])}
            case["-D"] = run([setkey, "-D"])
            case["-DP"] = run([setkey, "-DP"])
            result["broken"].append(case)
    empty()
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
