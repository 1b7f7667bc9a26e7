#!/bin/sh
# racoon.sh -- the seed memo's rc script (section 3), rewritten for pyracoon.
#
#   racoon.sh start     start pyracoon (it detaches once its configuration, keys, kernel and
#                       sockets are checked; a failure is printed here and start exits 1)
#   racoon.sh stop      SIGTERM the pid in the pid file and wait for it to exit
#   racoon.sh restart   stop, then start
#   racoon.sh reload    SIGHUP: re-read racoon.conf (a broken file is refused, the old one stays)
#   racoon.sh status    say whether the pid in the pid file is running
#
# Unlike the memo's script, stop uses the pid file instead of 'killall racoon', so it never
# signals another racoon-named process. Settings (environment, or $RC_CONF if readable):
#   pyracoon        the daemon; default: the first that exists of the program recorded when
#                   this script was installed, the checkout's .venv/bin/pyracoon (when run as
#                   rc.d/racoon.sh from a checkout), pyracoon on $PATH, /usr/local/sbin/pyracoon
#   racoon_conf     its configuration   (default: none given, so pyracoon uses its own default,
#                   /etc/racoon/racoon.conf on Linux, /usr/local/etc/racoon/racoon.conf on FreeBSD)
#   racoon_pidfile  its pid file        (default /var/run/racoon.pid; must match 'path pidfile')
#   racoon_flags    extra flags, e.g. "-l /var/log/racoon.log" or "--kernel unix:/run/k.sock"

installed_pyracoon=""   # written by 'pyracoon-files install'

RC_CONF=${RC_CONF:-/etc/rc.conf}
[ -r "$RC_CONF" ] && . "$RC_CONF"
here=$(cd "$(dirname "$0")" 2>/dev/null && pwd)
if [ -z "${pyracoon:-}" ]; then
    for candidate in "$installed_pyracoon" "$here/../.venv/bin/pyracoon" \
        "$(command -v pyracoon 2>/dev/null)" /usr/local/sbin/pyracoon /usr/local/bin/pyracoon; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then pyracoon=$candidate; break; fi
    done
fi
racoon_conf=${racoon_conf:-}
racoon_pidfile=${racoon_pidfile:-/var/run/racoon.pid}
racoon_flags=${racoon_flags:-}

running_pid() {
    [ -r "$racoon_pidfile" ] || return 1
    pid=$(cat "$racoon_pidfile" 2>/dev/null)
    case "$pid" in ''|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

do_start() {
    if pid=$(running_pid); then
        echo "racoon already running (pid $pid)" >&2
        return 1
    fi
    if [ -z "${pyracoon:-}" ]; then
        echo "racoon.sh: cannot find pyracoon (not installed beside this script, not in" \
            "$here/../.venv/bin, not on PATH, not in /usr/local/sbin); set pyracoon=PATH" >&2
        return 1
    fi
    if [ ! -x "$pyracoon" ]; then
        echo "racoon.sh: $pyracoon is not executable" >&2
        return 1
    fi
    # shellcheck disable=SC2086
    if [ -n "$racoon_conf" ]; then
        "$pyracoon" -f "$racoon_conf" $racoon_flags || return 1
    else
        "$pyracoon" $racoon_flags || return 1
    fi
    echo " racoon"
}

do_stop() {
    if ! pid=$(running_pid); then
        echo "racoon not running (no live pid in $racoon_pidfile)" >&2
        return 1
    fi
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 100 ]; then
            echo "racoon.sh: pid $pid did not stop within 10 s" >&2
            return 1
        fi
        sleep 0.1
    done
    echo " racoon"
}

case "$1" in
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
reload)
    if pid=$(running_pid); then kill -HUP "$pid" && echo " racoon"
    else echo "racoon not running (no live pid in $racoon_pidfile)" >&2; exit 1; fi
    ;;
status)
    if pid=$(running_pid); then echo "racoon is running as pid $pid."
    else echo "racoon is not running."; exit 1; fi
    ;;
*)
    echo "Usage: racoon.sh { start | stop | restart | reload | status }"
    exit 64
    ;;
esac
