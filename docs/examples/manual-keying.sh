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
trap 'kill "$(cat "$dir/kernel.pid" 2>/dev/null)" 2>/dev/null; sleep 0.2; rm -rf "$dir"' EXIT INT TERM

# --background returns once the kernel accepts clients: nothing to wait for
"$bin/pyracoon-kernel" --listen "$dir/kernel.sock" --background --pidfile "$dir/kernel.pid"
export PYRACOON_KERNEL="unix:$dir/kernel.sock"

echo "# pysetkey -f conf/ipsec.conf.host1"
"$bin/pysetkey" -f "$top/conf/ipsec.conf.host1"
echo "# pysetkey -D"
"$bin/pysetkey" -D
echo "# pysetkey -DP"
"$bin/pysetkey" -DP
echo "# a packet from host 1 to host 2 meets the SPD"
"$bin/pyracoon-kernel" packet 2001:240:7:101:260:1dff:fef2:7648 2001:240:7:100::1:6 tcp 1022 22
