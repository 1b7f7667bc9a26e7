#!/bin/bash
# capture.sh -- regenerate strongswan-*.json: real IKEv1 datagrams between two
# strongSwan charon daemons in network namespaces (see README.md here).
# Needs root, strongswan-charon strongswan-swanctl strongswan-pki
# libcharon-extra-plugins tshark openssl, and ../strongswan-pair.sh beside this directory
# (override with PAIR=...).  Writes into the directory holding this script.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAIR=${PAIR:-$HERE/../strongswan-pair.sh}
TMP=$(mktemp -d /tmp/wire-capture.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# capture_one MODE AUTH NATT -> 0 ok, 1 hard failure, 3 incomplete capture (retry)
capture_one() {
  local mode=$1 auth=$2 natt=$3 rc=0 wd name=$1-$2
  [ "$natt" = 1 ] && name=$name-natt
  local log=$TMP/$name.log
  # LIBIPSEC=1 makes charon fake NAT-D, float to port 4500 and use UDP-encapsulated
  # tunnel mode (see the pair script's header).
  NS_A=wireA NS_B=wireB CAPTURE=1 KEEP_WD=1 LIBIPSEC=$natt IKE_MODE=$mode AUTH=$auth \
    IKE_PROPOSAL=aes128-sha1-modp2048 ESP_PROPOSAL=aes128-sha1 bash "$PAIR" >"$log" 2>&1 || rc=$?
  wd=$(sed -n 's/^== generating test PKI in \(.*\)\/pki$/\1/p' "$log")
  # 141: SIGPIPE in the pair script's own "tshark -V | ... | head" display, after teardown
  if { [ "$rc" != 0 ] && [ "$rc" != 141 ]; } || [ ! -s "$wd/ike.pcap" ]; then
    echo "$name: strongswan-pair.sh failed (rc=$rc); its output:" >&2
    cat "$log" >&2
    [ -n "$wd" ] && rm -rf "$wd"
    return 1
  fi
  cp "$wd/ike.pcap" "$TMP/$name.pcap"
  rm -rf "$wd"
  python3 - "$mode" "$auth" "$natt" "$name" "$TMP" "$HERE" <<'PY'
import json, re, subprocess, sys
mode, auth, natt, name, tmp, here = sys.argv[1:]
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
                    "port": int(dp), "datagram": payload})
# tshark may start a moment late (the pair script waits for "Capturing on" only so
# long): insist on the whole exchange, from MM1/AM1 (zero responder cookie) to the
# final Informational (exchange type 5) or, with NAT-T (SAs installed), QM3 + ESP.
ike = [bytes.fromhex(p["datagram"])[4 if p["port"] == 4500 else 0:] for p in packets
       if p["port"] == 500 or p["datagram"].startswith("00000000")]
complete = ike and ike[0][8:16] == bytes(8)
if natt == "1":
    complete = complete and sum(d[18] == 32 for d in ike) == 3 and len(ike) < len(packets)
else:
    complete = complete and ike[-1][18] == 5
if not complete:
    print(name, "incomplete capture, retrying", file=sys.stderr)
    sys.exit(3)
doc = {"scenario": name, "exchange_mode": mode, "auth": auth,
       "psk": "interop-test-psk" if auth == "psk" else None, "nat_traversal": natt == "1",
       "strongswan": "5.9.8-5+deb12u6 (Debian 12)",
       "ike_proposal": "aes128-sha1-modp2048", "esp_proposal": "aes128-sha1",
       "initiator": "10.77.0.1", "responder": "10.77.0.2",
       "skeyid_a": key("SKEYID_a"),
       "encryption_key_ka": key("encryption key Ka"),
       "phase1_initial_iv": key("initial IV"), "packets": packets}
with open(f"{here}/strongswan-{name}.json", "w") as fh:
    json.dump(doc, fh, indent=1)
    fh.write("\n")
print(name, len(packets), "datagrams")
PY
}

for combo in main:psk:0 main:rsasig:0 aggressive:psk:0 aggressive:rsasig:0 main:psk:1; do
  IFS=: read -r mode auth natt <<<"$combo"
  for _attempt in 1 2 3 4 5; do
    rc=0; capture_one "$mode" "$auth" "$natt" || rc=$?
    [ "$rc" = 3 ] || break
  done
  [ "$rc" = 0 ] || { echo "giving up on $combo" >&2; exit 1; }
done
