#!/bin/bash
# capture.sh -- regenerate strongswan-*.json: real IKEv1 datagrams between two
# strongSwan charon daemons in network namespaces (see README.md here).
# Needs root, strongswan-charon strongswan-swanctl strongswan-pki
# libcharon-extra-plugins tshark openssl, and /work/shared/interop/strongswan-pair.sh
# (override with PAIR=...).  Writes into the directory holding this script.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAIR=${PAIR:-/work/shared/interop/strongswan-pair.sh}
TMP=$(mktemp -d /tmp/wire-capture.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
capture_one() {  # capture_one MODE AUTH -> 0 ok, 1 hard failure, 3 incomplete capture
  local mode=$1 auth=$2
  log=$TMP/$mode-$auth.log
  rc=0
  NS_A=wireA NS_B=wireB CAPTURE=1 KEEP_WD=1 IKE_MODE=$mode AUTH=$auth \
    IKE_PROPOSAL=aes128-sha1-modp2048 ESP_PROPOSAL=aes128-sha1 bash "$PAIR" >"$log" 2>&1 || rc=$?
  wd=$(sed -n 's/^== generating test PKI in \(.*\)\/pki$/\1/p' "$log")
  if [ "$rc" != 0 ] || [ ! -s "$wd/ike.pcap" ]; then
    echo "$mode/$auth: strongswan-pair.sh failed (rc=$rc); its output:" >&2
    cat "$log" >&2
    [ -n "$wd" ] && rm -rf "$wd"
    return 1
  fi
  cp "$wd/ike.pcap" "$TMP/$mode-$auth.pcap"
  rm -rf "$wd"
  python3 - "$mode" "$auth" "$TMP" "$HERE" <<'PY'
import json, re, subprocess, sys
mode, auth, tmp, here = sys.argv[1:]
name = f"{mode}-{auth}"
fields = ["frame.number", "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "udp.payload"]
cmd = ["tshark", "-r", f"{tmp}/{name}.pcap", "-T", "fields"]
for f in fields:
    cmd += ["-e", f]
out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
log = open(f"{tmp}/{name}.log").read()
def key(label):
    return re.search(r"^   " + re.escape(label) + r"\s+([0-9a-f]+)$", log, re.M).group(1)
packets = []
for line in out.strip().splitlines():
    n, src, dst, sp, dp, payload = line.split("\t")
    packets.append({"frame": int(n), "src": f"{src}[{sp}]", "dst": f"{dst}[{dp}]",
                    "datagram": payload})
# tshark may start a moment late (the pair script waits for "Capturing on" only so
# long): insist on the whole exchange, MM1/AM1 (zero responder cookie) to the
# final Informational (exchange type 5).
first, last = bytes.fromhex(packets[0]["datagram"]), bytes.fromhex(packets[-1]["datagram"])
if first[8:16] != bytes(8) or last[18] != 5:
    print(name, "incomplete capture, retrying", file=sys.stderr)
    sys.exit(3)
doc = {"scenario": name, "exchange_mode": mode, "auth": auth,
       "psk": "interop-test-psk" if auth == "psk" else None,
       "strongswan": "5.9.8-5+deb12u6 (Debian 12)",
       "ike_proposal": "aes128-sha1-modp2048", "esp_proposal": "aes128-sha1",
       "initiator": "10.77.0.1", "responder": "10.77.0.2",
       "encryption_key_ka": key("encryption key Ka"),
       "phase1_initial_iv": key("initial IV"), "packets": packets}
with open(f"{here}/strongswan-{name}.json", "w") as fh:
    json.dump(doc, fh, indent=1)
    fh.write("\n")
print(name, len(packets), "datagrams")
PY
}
for combo in main:psk main:rsasig aggressive:psk aggressive:rsasig; do
  for attempt in 1 2 3 4 5; do
    rc=0; capture_one "${combo%%:*}" "${combo##*:}" || rc=$?
    [ "$rc" = 3 ] || break
  done
  [ "$rc" = 0 ] || { echo "giving up on $combo" >&2; exit 1; }
done
