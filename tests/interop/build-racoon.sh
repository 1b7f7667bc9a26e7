#!/bin/bash
# build-racoon.sh -- build ipsec-tools' racoon, setkey and racoonctl from their source tarball
# into a cache directory, and print that directory.
#
# tests/admin/test_admin_racoonctl.py runs the real racoonctl against pyracoon (racoonctl needs
# only the admin socket, no PF_KEY); tests/admin/test_admin_layout.py compiles racoon's headers
# with gcc to check pyracoon's struct layouts. The headers of the source tree (racoon's
# handler.h, admin.h, schedule.h, evt.h...) are kept in $PREFIX/include/racoon-src for that.
#
# Idempotent: with the three programs and the headers in place it only prints the directory; a
# cache built before the headers were kept gets them from the tarball without a rebuild.
# Needs gcc make autoconf automake libtool flex bison libfl-dev libssl-dev pkg-config (.ci/run
# installs them); about 2-3 minutes on two cores.
# env: RACOON_TARBALL (default: the first ipsec-tools-*.tar.gz in $RACOON_SOURCE_DIR, which is
#      /var/tmp unless set, else in the directories above the checkout, three levels deep, else
#      anywhere four levels below /),
#      RACOON_PREFIX=/var/tmp/racoon-0.9.1
set -euo pipefail
PREFIX=${RACOON_PREFIX:-/var/tmp/racoon-0.9.1}
HEADERS=$PREFIX/include/racoon-src
built() { [ -x "$PREFIX/sbin/racoon" ] && [ -x "$PREFIX/sbin/setkey" ] && [ -x "$PREFIX/bin/racoonctl" ]; }
if built && [ -f "$HEADERS/handler.h" ]; then echo "$PREFIX"; exit 0; fi

TARBALL=${RACOON_TARBALL:-}
if [ -z "$TARBALL" ]; then
    for f in "${RACOON_SOURCE_DIR:-/var/tmp}"/ipsec-tools-*.tar.gz; do
        if [ -f "$f" ]; then TARBALL=$f; break; fi
    done
fi
if [ -z "$TARBALL" ] && [ -z "${RACOON_SOURCE_DIR:-}" ]; then
    # a source tree set out beside the checkout (a workspace that holds the project and its
    # third-party sources side by side): the directories above the repository, three deep
    REPO=$(cd "$(dirname "$0")/../.." && pwd)
    TARBALL=$(find "$(dirname "$REPO")" "$(dirname "$(dirname "$REPO")")" -maxdepth 3 \
        -name 'ipsec-tools-*.tar.gz' -type f -readable -print -quit 2>/dev/null || true)
    if [ -z "$TARBALL" ]; then  # a CI checkout elsewhere on the same machine
        TARBALL=$(find / -maxdepth 4 \( -path /proc -o -path /sys -o -path /dev \) -prune \
            -o -name 'ipsec-tools-*.tar.gz' -type f -readable -print -quit 2>/dev/null || true)
    fi
fi
if [ -z "$TARBALL" ] || [ ! -r "$TARBALL" ]; then
    echo "build-racoon.sh: no ipsec-tools source tarball in ${RACOON_SOURCE_DIR:-/var/tmp}" \
        "or beside the checkout (set RACOON_TARBALL or RACOON_SOURCE_DIR)" >&2
    exit 1
fi

mkdir -p "$PREFIX"
exec 9>"$PREFIX/.build-lock"
flock 9
if built && [ -f "$HEADERS/handler.h" ]; then echo "$PREFIX"; exit 0; fi
WORK=$(mktemp -d /tmp/racoon-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TARBALL" -C "$WORK"
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -f "$SRC/src/racoon/admin.h" ] || { echo "build-racoon.sh: $TARBALL is not ipsec-tools" >&2; exit 1; }

if ! built; then
    for tool in gcc make autoconf automake libtoolize flex bison pkg-config; do
        command -v "$tool" >/dev/null || { echo "build-racoon.sh: $tool is missing" >&2; exit 1; }
    done
    (
        cd "$SRC"
        ./bootstrap >"$WORK/bootstrap.log" 2>&1
        ./configure --prefix="$PREFIX" --disable-security-context --without-readline \
            --enable-natt --enable-dpd --enable-frag --enable-hybrid --enable-adminport \
            --with-kernel-headers=/usr/include \
            --sysconfdir="$PREFIX/etc" --localstatedir="$PREFIX/var" >"$WORK/configure.log" 2>&1
        make -j"$(nproc)" >"$WORK/make.log" 2>&1
        make install >"$WORK/install.log" 2>&1
    ) || {
        echo "build-racoon.sh: the build failed; the end of its last log:" >&2
        tail -n 30 "$(ls -t "$WORK"/*.log | head -n 1)" >&2
        exit 1
    }
fi
mkdir -p "$HEADERS"
cp "$SRC"/src/racoon/*.h "$HEADERS"/
built || { echo "build-racoon.sh: make install left no racoon/setkey/racoonctl" >&2; exit 1; }
echo "$PREFIX"
