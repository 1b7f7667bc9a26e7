#!/bin/bash
# build-fake-kernel.sh -- build (once) the tiny "fake-kernel" plugin for
# Debian's strongSwan charon and print the path of the .so.
#
# WHAT it builds: ONE shared object, libstrongswan-fake-kernel.so, made of
#   * load_tester_ipsec.c from strongSwan's own source (the no-op kernel IPsec
#     backend of the load-tester plugin; Debian ships no load-tester): every
#     get_spi/add_sa/update_sa/del_sa/add_policy/del_policy "succeeds" and
#     does nothing, and
#   * fake_kernel_plugin.c (written below, ~60 lines): a plugin named
#     "fake-kernel" that registers that backend as charon's "kernel-ipsec"
#     feature. It also hands out random SPIs from kernel-netlink's default
#     range 0xc0000000-0xcfffffff (load-tester's counter would give 01000000,
#     02000000, ... in every charon, i.e. the same SPIs on both peers) and
#     reports no policy use time (load-tester's "1" shows as "<uptime>s ago").
#   Both files are compiled against the INSTALLED /usr/lib/ipsec/libcharon.so
#   and libstrongswan.so. Nothing else of strongSwan is built or installed:
#   no make, no libtool, no charon, no other plugin.
#
# WHY: this machine's kernel has XFRM but no ESP (CONFIG_INET_ESP unset), so
#   charon's quick mode fails when it installs the ESP SAs ("received netlink
#   error: Function not implemented (38)", "unable to install inbound and
#   outbound IPsec SA (SAD) in kernel") and charon answers with a Delete
#   (responder) or N(NO_PROPOSAL_CHOSEN) (initiator) instead of completing.
#   For IKEv1 interop tests (the IKE messages, the derived keys) the kernel
#   state is irrelevant: with fake-kernel loaded charon completes quick mode,
#   the CHILD_SA becomes INSTALLED and its keys are derived and logged.
#
# NOTHING REACHES THE KERNEL: no XFRM state or policy is created (ip xfrm
#   state/policy stay empty; not even charon's IKE socket bypass policies),
#   so no ESP traffic can flow through such a CHILD_SA. kernel-netlink must
#   still be loaded AFTER it: the first registered kernel-ipsec wins (so
#   fake-kernel must come first in charon.load), and kernel-netlink keeps
#   providing kernel-net (addresses, interfaces, routes). Used by
#   tests/interop/interop_charon.py (Charon(fake_kernel=...)), which puts it first in the
#   load list of that charon only (plugin dir bind-mounted in its private
#   mount namespace; the system's /usr/lib/ipsec/plugins is not touched).
#
# HOW: 1. apt-get install whatever of gcc libc6-dev bzip2 is missing
#         (make, pkg-config, libssl-dev, libgmp-dev are NOT needed: the
#         configure run below enables no plugin that would look for a
#         library, and without make/pkg-config it only notes their absence
#         -- the config.h it writes is identical);
#      2. Debian's orig tarball of the installed upstream version
#         (strongswan_5.9.8.orig.tar.bz2) via apt-get source --download-only
#         with a temporary deb-src list AND private apt lists/cache dirs in a
#         temp dir (removed afterwards; the system's apt state is not
#         touched). Debian's patches are not applied (the mirror here 404s
#         the .dsc/.debian.tar.xz anyway): the interfaces used here
#         (kernel_ipsec_t, plugin_t, daemon_t) are those of the same upstream
#         release, and charon loading it and completing quick mode confirms
#         the fit. SRC_TARBALL=FILE skips the download;
#      3. ./configure --no-create (checks only, no Makefiles) with a minimal
#         option set, then ./config.status config.h: only config.h is used.
#         Of its macros only a few matter to these two files (e.g.
#         HAVE_GCC_ATOMIC_OPERATIONS, ME = --enable-mediation, which Debian's
#         libcharon is built with and which changes daemon_t's layout);
#      4. gcc -shared of the two files, -z defs against /usr/lib/ipsec.
#
# IDEMPOTENT: if $DIR/libstrongswan-fake-kernel.so exists and the stamp next
#   to it (libstrongswan-fake-kernel.so.built-for) lists the same versions of
#   strongswan-charon, strongswan-libcharon and libstrongswan as dpkg reports
#   now (and the same hash of the plugin source below), it only prints the
#   path. Concurrent runs serialise on a lock file.
#   The orig tarball is kept in $DIR for rebuilds; the unpacked source is not.
#
# Usage: build-fake-kernel.sh        prints the .so path (only that) on stdout;
#                                    progress/errors go to stderr. Root needed
#                                    only when build deps must be installed.
# env:   FAKE_KERNEL_DIR=/var/tmp/pyracoon-fake-kernel   cache/output dir
#        FORCE=1        rebuild even if up to date
#        KEEP_SRC=1     keep the unpacked source + configure log in $DIR/src
#        SRC_TARBALL=F  use this strongswan_X.Y.Z.orig.tar.bz2 (no download)
#        IPSECLIB=/usr/lib/ipsec   where libcharon.so/libstrongswan.so are
# Cold run on this machine (2 cores, deps present): 9-18 s (download ~1.5 s,
# configure 7-15 s, gcc <1 s). Up to date: ~0.02 s.

set -euo pipefail

DIR=${FAKE_KERNEL_DIR:-/var/tmp/pyracoon-fake-kernel}
IPSECLIB=${IPSECLIB:-/usr/lib/ipsec}
SO=$DIR/libstrongswan-fake-kernel.so
STAMP=$SO.built-for
PKGS="strongswan-charon strongswan-libcharon libstrongswan"

# ------------------------------------------------------- plugin source ----
# (its hash is part of the stamp: editing it here triggers a rebuild)
PLUGIN_SRC=$(cat <<'C'
/*
 * fake-kernel: registers strongSwan's load-tester no-op kernel_ipsec_t
 * (load_tester_ipsec.c, linked into this plugin) as charon's kernel-ipsec
 * backend. All SA/policy installs, updates and deletes succeed WITHOUT
 * reaching the kernel, so that charon completes IKEv1 quick mode on a kernel
 * without ESP (interop tests: messages and keys only, no ESP traffic).
 * Load it BEFORE kernel-netlink: the first registered kernel-ipsec wins;
 * kernel-netlink still provides kernel-net.
 * Built by tests/interop/build-fake-kernel.sh against the installed libcharon.
 */
#include <sys/random.h>
#include <daemon.h>
#include <plugins/plugin.h>
#include "load_tester_ipsec.h"

typedef struct { plugin_t plugin; } fake_kernel_plugin_t;

/* SPIs like kernel-netlink's (random, KERNEL_SPI_MIN..MAX, network order)
 * instead of load-tester's per-process counter */
static status_t fake_get_spi(kernel_ipsec_t *this, host_t *src, host_t *dst,
							 uint8_t protocol, uint32_t *spi)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
	{
		r = (uint32_t)random();
	}
	*spi = htonl(KERNEL_SPI_MIN + r % (KERNEL_SPI_MAX - KERNEL_SPI_MIN + 1));
	return SUCCESS;
}

/* no policy "last use" time (load-tester reports 1, which swanctl shows as
 * "<uptime>s ago"); NOT_SUPPORTED as for query_sa: nothing is ever used */
static status_t fake_query_policy(kernel_ipsec_t *this,
								  kernel_ipsec_policy_id_t *id,
								  kernel_ipsec_query_policy_t *data,
								  time_t *use_time)
{
	return NOT_SUPPORTED;
}

static kernel_ipsec_t *fake_kernel_ipsec_create()
{
	kernel_ipsec_t *ipsec = &load_tester_ipsec_create()->interface;

	ipsec->get_spi = fake_get_spi;
	ipsec->query_policy = fake_query_policy;
	DBG1(DBG_KNL, "fake-kernel: no-op kernel IPsec interface, IPsec SAs and "
		 "policies are NOT installed in the kernel");
	return ipsec;
}

static char *get_name(plugin_t *this)
{
	return "fake-kernel";
}

static int get_features(plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK(kernel_ipsec_register, fake_kernel_ipsec_create),
			PLUGIN_PROVIDE(CUSTOM, "kernel-ipsec"),
	};
	*features = f;
	return countof(f);
}

static void destroy(plugin_t *this)
{
	free(this);
}

plugin_t *fake_kernel_plugin_create()
{
	fake_kernel_plugin_t *this;

	INIT(this,
		.plugin = {
			.get_name = get_name,
			.get_features = get_features,
			.reload = (void*)return_false,
			.destroy = destroy,
		},
	);
	return &this->plugin;
}
C
)

log() { echo "build-fake-kernel: $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
T0=$(now)

want=$(dpkg-query -W -f='${Package} ${Version}\n' $PKGS 2>/dev/null) ||
  die "need the Debian packages $PKGS (apt-get install strongswan-charon)"
want="$want
fake_kernel_plugin.c $(printf '%s\n' "$PLUGIN_SRC" | sha256sum | cut -c1-16)"
uptodate() { [ -s "$SO" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; }
if [ "${FORCE:-0}" != 1 ] && uptodate; then echo "$SO"; exit 0; fi

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9                      # a concurrent run may be building it right now
if [ "${FORCE:-0}" != 1 ] && uptodate; then echo "$SO"; exit 0; fi

# upstream version of the installed libraries: 5.9.8-5+deb12u6 -> 5.9.8
DEBVER=$(dpkg-query -W -f='${Version}' libstrongswan)
UPVER=${DEBVER#*:}; UPVER=${UPVER%-*}
for f in libcharon.so libstrongswan.so; do
  [ -e "$IPSECLIB/$f" ] || die "missing $IPSECLIB/$f"
done
log "building fake-kernel plugin for strongSwan $DEBVER (upstream $UPVER) in $DIR"

# ---------------------------------------------------------- build deps ----
need=()
command -v gcc   >/dev/null || need+=(gcc)
command -v bzip2 >/dev/null || need+=(bzip2)
dpkg-query -W -f='${Status}\n' libc6-dev 2>/dev/null | grep -q ' installed$' || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "must run as root to apt-get install ${need[*]}"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; } ||
    die "could not install ${need[*]}"
fi

WORK=$(mktemp -d "$DIR/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------- source -----
TARBALL=${SRC_TARBALL:-$DIR/strongswan_$UPVER.orig.tar.bz2}
if [ ! -s "$TARBALL" ]; then
  [ -z "${SRC_TARBALL:-}" ] || die "SRC_TARBALL=$SRC_TARBALL not found"
  t=$(now)
  CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  CODENAME=${CODENAME:-bookworm}
  A=$WORK/apt
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/dl"
  # temporary deb-src list (security suite first: it usually has the
  # installed strongswan); it lives in $WORK and is removed with it
  cat > "$A/src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $CODENAME-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $CODENAME $CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APTO=(-o "Dir::Etc::sourcelist=$A/src.sources" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache"
        -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${APTO[@]}" update >"$A/update.log" 2>&1 ||
    { cat "$A/update.log" >&2; die "apt-get update (deb-src) failed"; }
  # the installed version if the index still has it, else the newest one
  # (same upstream tarball). Pitfall: here the mirror answers 404 for the
  # .dsc and .debian.tar.xz (apt-get source exits non-zero), but the orig
  # tarball arrives, checked against the signed Sources index -- enough.
  OT=$A/dl/strongswan_$UPVER.orig.tar.bz2
  ( cd "$A/dl"
    apt-get "${APTO[@]}" source --download-only "strongswan=$DEBVER" || true
    [ -s "$OT" ] || apt-get "${APTO[@]}" source --download-only strongswan || true
  ) >"$A/source.log" 2>&1
  if [ ! -s "$OT" ]; then
    cat "$A/source.log" >&2
    die "could not fetch strongswan_$UPVER.orig.tar.bz2 (set SRC_TARBALL=FILE)"
  fi
  mv "$OT" "$TARBALL"
  log "fetched $(basename "$TARBALL") in $(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"
fi

t=$(now)
tar -C "$WORK" -xjf "$TARBALL"
S=$WORK/strongswan-$UPVER
[ -f "$S/configure" ] || die "unexpected tarball layout (no strongswan-$UPVER/configure)"

# ------------------------------------------------------------ config.h ----
# --disable-defaults: no plugin, hence no library checks; --enable-ikev1/2
# and --enable-mediation as in Debian's build (ME changes struct layouts).
# --no-create: run the checks only, then generate config.h alone.
( cd "$S" &&
  ./configure --no-create --disable-defaults --enable-ikev1 --enable-ikev2 \
    --enable-mediation &&
  ./config.status config.h ) >"$WORK/configure.log" 2>&1 ||
  { tail -30 "$WORK/configure.log" >&2; die "configure failed (log above)"; }
grep -q '^#define ME ' "$S/config.h" || die "config.h lacks ME (--enable-mediation)"
log "config.h ready after $(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"

# ------------------------------------------------------------- compile ----
printf '%s\n' "$PLUGIN_SRC" > "$WORK/fake_kernel_plugin.c"
L=$S/src/libcharon/plugins/load_tester
gcc -O2 -g -Wall -fPIC -shared -include "$S/config.h" \
  -I"$S/src/libstrongswan" -I"$S/src/libcharon" -I"$L" \
  -o "$WORK/libstrongswan-fake-kernel.so" \
  "$WORK/fake_kernel_plugin.c" "$L/load_tester_ipsec.c" \
  -L"$IPSECLIB" -lcharon -lstrongswan -Wl,-rpath,"$IPSECLIB" -Wl,-z,defs >&2 ||
  die "compile failed"
nm -D --defined-only "$WORK/libstrongswan-fake-kernel.so" | grep -qw fake_kernel_plugin_create ||
  die "fake_kernel_plugin_create not exported"

cp "$WORK/fake_kernel_plugin.c" "$DIR/"          # for reference
if [ "${KEEP_SRC:-0}" = 1 ]; then
  rm -rf "$DIR/src"; mkdir -p "$DIR/src"
  mv "$S" "$WORK/configure.log" "$DIR/src/"
  log "source kept in $DIR/src"
fi
# install atomically: .so first, stamp last (uptodate() needs both)
rm -f "$STAMP"
mv "$WORK/libstrongswan-fake-kernel.so" "$SO.tmp" && mv -f "$SO.tmp" "$SO"
printf '%s\n' "$want" > "$STAMP"
log "built $SO in $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"
echo "$SO"
