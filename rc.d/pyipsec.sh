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
#   pysetkey       the program (default: pysetkey on $PATH)
#   PYRACOON_KERNEL  which kernel pysetkey talks to (see pysetkey --kernel)

RC_CONF=${RC_CONF:-/etc/rc.conf}
[ -r "$RC_CONF" ] && . "$RC_CONF"
ipsec_enable=${ipsec_enable:-NO}
ipsec_file=${ipsec_file:-/etc/ipsec.conf}
pysetkey=${pysetkey:-pysetkey}

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
    "$0" stop && "$0" start
    ;;
status)
    "$pysetkey" -DP && "$pysetkey" -D
    ;;
*)
    echo "Usage: pyipsec.sh { start | stop | reload | status }"
    exit 64
    ;;
esac
