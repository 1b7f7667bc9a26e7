#!/bin/bash
# fetch-libreswan.sh -- unpack Debian's libreswan into a private directory and print its root.
#
# libreswan conflicts with strongswan-charon (both provide ike-server), so it cannot be
# installed next to it: `apt-get download` fetches the .deb (the system's apt lists are only
# read) and `dpkg -x` unpacks it under $DIR/root. Nothing is configured or started; pluto is run
# from there by tests/interop/interop_pluto.py, which binds $DIR/root/usr/libexec/ipsec over
# /usr/libexec/ipsec in pluto's own mount namespace only (pluto execs its addconn helper from
# that compiled-in path). Its shared libraries (libldns3, libevent-pthreads, NSS) and certutil/
# pk12util (libnss3-tools) are ordinary packages that .ci/run installs.
#
# Idempotent: if $DIR/root/usr/libexec/ipsec/pluto exists it only prints the root. The Debian
# version of what was unpacked is kept in $DIR/version.
# env: LIBRESWAN_DIR=/var/tmp/pyracoon-libreswan
set -euo pipefail
DIR=${LIBRESWAN_DIR:-/var/tmp/pyracoon-libreswan}
PLUTO=$DIR/root/usr/libexec/ipsec/pluto
if [ -x "$PLUTO" ]; then echo "$DIR/root"; exit 0; fi
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if [ -x "$PLUTO" ]; then echo "$DIR/root"; exit 0; fi
WORK=$(mktemp -d "$DIR/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"  # apt downloads as _apt
( cd "$WORK" && apt-get download libreswan ) >&2 || { echo "apt-get download libreswan failed" >&2; exit 1; }
rm -rf "$DIR/root"
dpkg -x "$WORK"/libreswan_*.deb "$DIR/root"
dpkg-deb -f "$WORK"/libreswan_*.deb Version > "$DIR/version"   # dpkg -x drops the control data
[ -x "$PLUTO" ] || { echo "no pluto in the package" >&2; exit 1; }
if ldd "$PLUTO" | grep -q "not found"; then
  echo "pluto lacks libraries: $(ldd "$PLUTO" | grep 'not found' | tr -s ' ')" >&2
  exit 1
fi
echo "$DIR/root"
