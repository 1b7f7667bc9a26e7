#!/bin/sh
# The seed memo's manual keying (sections 2 and 9) on a machine without kernel IPsec: start a
# simulated kernel, load host 1's SAD and SPD with pysetkey, show them with -D and -DP, pass a
# packet through the SPD, and stop the kernel again. Leaves nothing running.
#
#   sh docs/examples/manual-keying.sh        (from the repository, after the README's set-up)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PYRACOON_BIN:-$top/.venv/bin}
dir=$(mktemp -d /tmp/pyracoon-demo.XXXXXX)
trap 'kill "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM

"$bin/pyracoon-kernel" --listen "$dir/kernel.sock" &
kpid=$!
export PYRACOON_KERNEL="unix:$dir/kernel.sock"
i=0
until "$bin/pysetkey" -DP >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 100 ] || { echo "the simulated kernel did not start" >&2; exit 1; }
    sleep 0.1
done

echo "# pysetkey -f conf/ipsec.conf.host1"
"$bin/pysetkey" -f "$top/conf/ipsec.conf.host1"
echo "# pysetkey -D"
"$bin/pysetkey" -D
echo "# pysetkey -DP"
"$bin/pysetkey" -DP
echo "# a packet from host 1 to host 2 meets the SPD"
"$bin/pyracoon-kernel" packet 2001:240:7:101:260:1dff:fef2:7648 2001:240:7:100::1:6 tcp 1022 22
