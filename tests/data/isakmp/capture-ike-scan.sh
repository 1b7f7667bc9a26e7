#!/bin/bash
# capture-ike-scan.sh -- regenerate ike-scan.json: the first messages (MM1/AM1)
# that ike-scan, an IKEv1 implementation independent of strongSwan, builds.
# Needs root, ike-scan, tshark.  ike-scan runs in a private network namespace
# (wireS) on its loopback and sends to 127.0.0.1:500, i.e. to its own socket,
# so nothing leaves the namespace; tshark records what was sent.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NS=wireS
TMP=$(mktemp -d /tmp/wire-ikescan.XXXXXX)
cleanup() {
  [ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" tshark -i lo -f 'udp port 500' -w "$TMP/s.pcap" >"$TMP/tshark.log" 2>&1 &
TPID=$!
for _ in $(seq 100); do grep -qs 'Capturing on' "$TMP/tshark.log" && break; sleep 0.05; done
sleep 0.5
COMMANDS=(
  "ike-scan -r 1 127.0.0.1"
  "ike-scan -r 1 -A --id=test@example.org --dhgroup=2 127.0.0.1"
  "ike-scan -r 1 --trans=7/256,2,1,14 --trans=5,1,3,2 --vendor=afcad71368a1f1c96b8696fc77570100 127.0.0.1"
)
for c in "${COMMANDS[@]}"; do
  # shellcheck disable=SC2086
  ip netns exec "$NS" $c >/dev/null
done
sleep 1
kill "$TPID"; wait "$TPID" 2>/dev/null || true; TPID=
VERSION=$(dpkg-query -W -f '${Version}' ike-scan)
printf '%s\n' "${COMMANDS[@]}" > "$TMP/commands"
python3 - "$TMP" "$HERE" "$VERSION" <<'PY'
import json, subprocess, sys
tmp, here, version = sys.argv[1:]
out = subprocess.run(["tshark", "-r", f"{tmp}/s.pcap", "-T", "fields", "-e", "frame.number",
                      "-e", "udp.payload"], capture_output=True, text=True, check=True).stdout
commands = open(f"{tmp}/commands").read().splitlines()
rows = [line.split("\t") for line in out.strip().splitlines()]
assert len(rows) == len(commands), (rows, commands)
doc = {"tool": f"ike-scan {version} (Debian 12)",
       "packets": [{"frame": int(n), "command": c, "datagram": h}
                   for (n, h), c in zip(rows, commands)]}
with open(f"{here}/ike-scan.json", "w") as fh:
    json.dump(doc, fh, indent=1)
    fh.write("\n")
print("ike-scan.json:", len(rows), "datagrams")
PY
