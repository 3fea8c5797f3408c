#!/usr/bin/env bash
# Start, stop and ask about the zfs-fuse daemon (Debian's package zfs-fuse starts none here).
#
#   bash scripts/zfs_fuse.sh start    # start it unless it answers; wait until `zpool list` answers
#   bash scripts/zfs_fuse.sh stop     # unmount its filesystems, stop it, wait until it is gone
#   bash scripts/zfs_fuse.sh status   # exit 0 when it answers, 3 when it does not
#
# Needs root and /dev/fuse. The daemon's pid is kept in $ZFS_FUSE_PIDFILE (default
# /run/zfs-fuse.pid, the file Debian's init script uses). `stop` ends the process named in that
# file, or else the single zfs-fuse process there is; never more than one.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
PIDFILE="${ZFS_FUSE_PIDFILE:-/run/zfs-fuse.pid}"
WAIT_SECONDS="${ZFS_FUSE_WAIT:-30}"

say() { printf 'zfs-fuse: %s\n' "$*"; }
die() {
  printf 'zfs-fuse: %s\n' "$*" >&2
  exit 1
}

# The daemon answers when `zpool list` gets through its socket.
answers() { timeout 20 zpool list -H -o name >/dev/null 2>&1; }

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# The daemon's pid: the pidfile's when that process lives, else the one zfs-fuse process.
daemon_pid() {
  local pid=""
  if [[ -r "$PIDFILE" ]]; then
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    if alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == zfs-fuse ]]; then
      echo "$pid"
      return 0
    fi
  fi
  local pids
  pids="$(pgrep -x zfs-fuse || true)"
  if [[ -n "$pids" && "$(wc -l <<<"$pids")" == 1 ]]; then
    echo "$pids"
  fi
}

start() {
  if answers; then
    say "already running (pid $(daemon_pid || true))"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "must be root to start zfs-fuse"
  [[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here"
  command -v zfs-fuse >/dev/null 2>&1 || die "zfs-fuse is not installed (apt-get install zfs-fuse)"

  local pid
  pid="$(daemon_pid || true)"
  if [[ -z "$pid" ]]; then
    # It makes /var/run/zfs and /var/lock/zfs itself, but not their parents.
    mkdir -p "$(readlink -f /var/run)" "$(readlink -f /var/lock)" /var/lib/zfs
    rm -f "$PIDFILE"
    say "starting"
    local log status=0
    log="$(mktemp)"
    # As Debian's init script does: no limits that the daemon's threads could hit, no locale.
    (
      ulimit -v unlimited 2>/dev/null || true
      ulimit -l unlimited 2>/dev/null || true
      ulimit -s unlimited 2>/dev/null || true
      unset LANG LC_ALL
      exec zfs-fuse --pidfile "$PIDFILE" </dev/null >"$log" 2>&1
    ) || status=$?
    if ((status != 0)); then
      cat "$log" >&2
      rm -f "$log"
      die "zfs-fuse did not start (exit status $status)"
    fi
    rm -f "$log"
  else
    say "process $pid is there but does not answer yet; waiting"
  fi

  local deadline=$((SECONDS + WAIT_SECONDS))
  until answers; do
    if ((SECONDS >= deadline)); then
      die "started, but \`zpool list\` did not answer within ${WAIT_SECONDS}s"
    fi
    sleep 0.2
  done
  pid="$(daemon_pid || true)"
  if [[ -n "$pid" && -w "/proc/$pid/oom_score_adj" ]]; then
    echo -1000 >"/proc/$pid/oom_score_adj" 2>/dev/null || true
  fi
  say "running (pid ${pid:-?})"
}

stop() {
  local pid
  pid="$(daemon_pid || true)"
  if [[ -z "$pid" ]]; then
    if pgrep -x zfs-fuse >/dev/null; then
      die "several zfs-fuse processes and no pidfile naming one of them: not stopping any"
    fi
    say "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "must be root to stop zfs-fuse"
  if answers; then
    zfs unmount -a >/dev/null 2>&1 || say "some filesystems would not unmount (busy?)"
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      say "pid $pid still there after 20s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  # FUSE mounts of a daemon that died without unmounting are dead ends: detach them.
  local mnt
  while read -r _ mnt fstype _; do
    case "$fstype" in
      fuse.zfs | fuse) ;;
      *) continue ;;
    esac
    if [[ "$fstype" == fuse && "$mnt" != /zfs-kstat ]]; then continue; fi
    mnt="$(printf '%b' "$mnt")" # /proc/mounts escapes spaces as \040
    umount -l "$mnt" 2>/dev/null || true
  done < <(cat /proc/self/mounts)
  say "stopped"
}

status() {
  if answers; then
    say "running (pid $(daemon_pid || echo '?')); pools: $(zpool list -H -o name | tr '\n' ' ')"
    return 0
  fi
  if [[ -n "$(daemon_pid || true)" ]]; then
    say "process $(daemon_pid) is there but does not answer"
  else
    say "not running"
  fi
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: bash scripts/zfs_fuse.sh start|stop|status" >&2
    exit 2
    ;;
esac
