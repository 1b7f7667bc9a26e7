#!/bin/sh
# pyipsec.sh -- load the SPD/SAD from a setkey file at boot, as FreeBSD's rc.d/ipsec does with
# ipsec_enable="YES" and ipsec_file="/etc/ipsec.conf" in /etc/rc.conf (the seed memo, section 8).
#
#   pyipsec.sh start    pysetkey -f $ipsec_file
#   pyipsec.sh stop     flush the SPD and the SAD (pysetkey -FP; pysetkey -F)
#   pyipsec.sh reload   stop, then start
#   pyipsec.sh status   pysetkey -DP; pysetkey -D
#
# Settings come from the environment or from $RC_CONF (default /etc/rc.conf, if readable):
#   ipsec_enable   YES to act on start (default NO, as on FreeBSD)
#   ipsec_file     the setkey file (default /etc/ipsec.conf)
#   pysetkey       the program; default: the first that exists of the program recorded when
#                  this script was installed, the checkout's .venv/bin/pysetkey (when run as
#                  rc.d/pyipsec.sh from a checkout), pysetkey on $PATH, /usr/local/sbin/pysetkey
#   PYRACOON_KERNEL  which kernel pysetkey talks to (see pysetkey --kernel)

installed_pysetkey=""   # written by 'pyracoon-files install'

RC_CONF=${RC_CONF:-/etc/rc.conf}
[ -r "$RC_CONF" ] && . "$RC_CONF"
ipsec_enable=${ipsec_enable:-NO}
ipsec_file=${ipsec_file:-/etc/ipsec.conf}
here=$(cd "$(dirname "$0")" 2>/dev/null && pwd)
if [ -z "${pysetkey:-}" ]; then
    for candidate in "$installed_pysetkey" "$here/../.venv/bin/pysetkey" \
        "$(command -v pysetkey 2>/dev/null)" /usr/local/sbin/pysetkey /usr/local/bin/pysetkey; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then pysetkey=$candidate; break; fi
    done
fi
if [ -z "${pysetkey:-}" ]; then
    case "$1" in start|stop|reload|restart|status)
        echo "pyipsec: cannot find pysetkey (not in $here/../.venv/bin, not on PATH, not in" \
            "/usr/local/sbin); set pysetkey=PATH" >&2
        exit 1 ;;
    esac
fi

enabled() {
    case "$ipsec_enable" in
    [Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;;
    *) return 1 ;;
    esac
}

case "$1" in
start)
    if ! enabled; then
        echo "pyipsec: ipsec_enable is not YES; set it in $RC_CONF to load $ipsec_file" >&2
        exit 0
    fi
    if [ ! -r "$ipsec_file" ]; then
        echo "pyipsec: cannot read $ipsec_file" >&2
        exit 1
    fi
    "$pysetkey" -f "$ipsec_file" || exit 1
    echo " ipsec"
    ;;
stop)
    "$pysetkey" -FP && "$pysetkey" -F || exit 1
    echo " ipsec"
    ;;
reload|restart)
    sh "$0" stop && sh "$0" start
    ;;
status)
    "$pysetkey" -DP && "$pysetkey" -D
    ;;
*)
    echo "Usage: pyipsec.sh { start | stop | reload | status }"
    exit 64
    ;;
esac
