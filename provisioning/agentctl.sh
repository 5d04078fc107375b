#!/usr/bin/env bash
# The agent's lifecycle on one host: start, stop, status, logs, verify. Copied next to the bundle by
# `fleet.sh deploy` (and the Ansible playbook); fleet.sh runs it over ssh. Self-contained: no library.
#
# With systemd as PID 1 and the unit installed at /etc/systemd/system (no --root), it is systemctl
# and journalctl. Otherwise (a container, a test-bed network namespace, a unit under --root) it runs
# the unit's ExecStart line itself, the way systemd would: as the unit's User=, with its LimitNOFILE
# (as far as the hard limit allows) and EnvironmentFile, in a clean environment and a session of its
# own; PID in ROOT/run/hongbao-agent.pid, output appended to ROOT/var/log/hongbao-agent.log.
set -euo pipefail
PROG=agentctl.sh
NAME=hongbao-agent.service

usage() {
  cat <<'USAGE'
usage: agentctl.sh [--root DIR] [--control URL] [--dry-run] start|stop|status|logs [-n N]|verify|reload|mode

  start       start the agent (systemctl enable --now, or the unit's ExecStart in a session)
  stop        stop it (systemctl stop, or SIGTERM to its session, SIGKILL after TimeoutStopSec)
  status      "running pid P, ..." with its control endpoint's connections/qps/offsetMs; exit 1
              when it is not running or the endpoint does not answer
  logs        its last N log lines [50] (journalctl, or the log file)
  verify      systemd-analyze verify of the unit (skipped, saying so, where it is not installed)
  reload      systemctl daemon-reload (systemd mode; nothing in direct mode)
  mode        print "systemd" or "direct": how this host runs the agent

  --root DIR     the host's files live under DIR (the test bed: namespaces share one filesystem);
                 implies direct mode
  --control URL  the agent's control endpoint, for status [none: no probe]
  --dry-run      print the commands that would change something, run none
  -h, --help     this text
USAGE
}

die() {
  printf '%s: %s\n' "${PROG}" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s (see %s --help)\n' "${PROG}" "$*" "${PROG}" >&2
  exit 2
}

ROOT='' CONTROL='' DRY_RUN=0 ACTION='' LINES=50
while (($#)); do
  case $1 in
    --root) [[ $# -ge 2 && $2 == /* ]] || usage_error "--root needs an absolute path"; ROOT=${2%/}; shift 2 ;;
    --control) [[ $# -ge 2 && $2 =~ ^https?://[A-Za-z0-9.:-]+$ ]] || usage_error "--control needs http://HOST:PORT"; CONTROL=$2; shift 2 ;;
    -n) [[ $# -ge 2 && $2 =~ ^[0-9]{1,6}$ ]] || usage_error "-n needs a number of lines"; LINES=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    start | stop | status | logs | verify | reload | mode) [[ -z ${ACTION} ]] || usage_error "one action only"; ACTION=$1; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done
[[ -n ${ACTION} ]] || usage_error "no action (start, stop, status, logs, verify, reload, mode)"

UNIT=${ROOT}/etc/systemd/system/${NAME}
PID_FILE=${ROOT}/run/hongbao-agent.pid
LOG_FILE=${ROOT}/var/log/hongbao-agent.log
if [[ -z ${ROOT} && -d /run/systemd/system ]]; then MODE=systemd; else MODE=direct; fi

run() {
  if ((DRY_RUN)); then printf '+ %s\n' "$*"; else "$@"; fi
}

# unit_value KEY : the last KEY= of the unit's lines.
unit_value() { sed -n "s/^$1=//p" "${UNIT}" | tail -n 1; }

need_unit() { [[ -f ${UNIT} ]] || die "${UNIT}: no unit; run 'fleet.sh deploy' (or the playbook's deploy.yml) first"; }

# exec_argv : the unit's ExecStart words into ARGV (shell-style quoting, as fleet.sh writes it).
declare -a ARGV=()
exec_argv() {
  local line
  line=$(unit_value ExecStart)
  [[ -n ${line} ]] || die "${UNIT}: no ExecStart="
  mapfile -d '' -t ARGV < <(xargs printf '%s\0' <<<"${line}")
}

# running_pid : the direct-mode agent's PID, when its pid file names a live process running this
# unit's program (its second ExecStart word: this host's bundle).
running_pid() {
  local pid
  [[ -s ${PID_FILE} ]] || return 1
  pid=$(<"${PID_FILE}")
  [[ ${pid} =~ ^[0-9]+$ ]] || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  exec_argv
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "${ARGV[1]:-${ARGV[0]}} " || return 1
  echo "${pid}"
}

verify() {
  need_unit
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "unit not verified: systemd-analyze is not installed here"
    return 0
  fi
  local out
  out=$(systemd-analyze verify "${UNIT}" 2>&1) || die "systemd-analyze verify ${UNIT}: ${out//$'\n'/; }"
  # A line of the unit that systemd ignores is an error here; warnings about other units are not.
  [[ ${out} != *"${UNIT}:"* ]] || die "systemd-analyze verify ${UNIT}: ${out//$'\n'/; }"
  if [[ -n ${out} ]]; then
    echo "unit verified with warnings: systemd-analyze verify ${UNIT}: ${out//$'\n'/; }"
  else
    echo "unit verified: systemd-analyze verify ${UNIT}: no warnings"
  fi
}

start_direct() {
  local pid user nofile env_file home n
  need_unit
  if pid=$(running_pid); then
    echo "already running: pid ${pid}"
    return 0
  fi
  exec_argv
  user=$(unit_value User)
  user=${user:-root}
  nofile=$(unit_value LimitNOFILE)
  env_file=$(unit_value EnvironmentFile)
  env_file=${env_file#-}
  home=$(getent passwd "${user}" | cut -d: -f6) || die "User=${user} of ${UNIT} does not exist on this host"
  # The session: the limit, the environment systemd would give (PATH, the user's names, the
  # EnvironmentFile), its PID in the pid file, then the unit's user and its ExecStart.
  # shellcheck disable=SC2016 # expanded by the session's shell
  local script='ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; cd /; echo $$ >"$2"; set -a; if [ -n "$3" ] && [ -f "$3" ]; then . "$3"; fi; set +a; user=$4; shift 4; if [ "${user}" = root ]; then exec "$@"; fi; exec setpriv --reuid="${user}" --regid="$(id -g "${user}")" --init-groups -- "$@"'
  local -a session=(setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    "USER=${user}" "LOGNAME=${user}" "HOME=${home}" bash -c "${script}" hongbao-agent "${nofile:-1048576}" "${PID_FILE}" "${env_file}" "${user}" "${ARGV[@]}")
  if ((DRY_RUN)); then
    printf '+ %s </dev/null >>%s 2>&1 &\n' "${session[*]}" "${LOG_FILE}"
    return 0
  fi
  mkdir -p "${PID_FILE%/*}" "${LOG_FILE%/*}"
  rm -f "${PID_FILE}"
  "${session[@]}" </dev/null >>"${LOG_FILE}" 2>&1 &
  for ((n = 0; n < 50; n++)); do
    [[ -s ${PID_FILE} ]] && break
    sleep 0.1
  done
  sleep 0.5
  if pid=$(running_pid); then
    echo "started: pid ${pid} (user ${user}, nofile $(awk '/^Max open files/ {print $4}' "/proc/${pid}/limits"), no systemd: the unit's ExecStart)"
  else
    echo "agent exited at once; last lines of ${LOG_FILE}:"
    tail -n 5 "${LOG_FILE}" || true
    return 1
  fi
}

stop_direct() {
  local pid n timeout
  if ! pid=$(running_pid); then
    run rm -f "${PID_FILE}"
    echo "not running"
    return 0
  fi
  if ((DRY_RUN)); then
    echo "+ kill -TERM -- -${pid}"
    return 0
  fi
  timeout=$(unit_value TimeoutStopSec)
  [[ ${timeout} =~ ^[0-9]+$ ]] || timeout=20
  kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}"
  for ((n = 0; n < timeout * 10; n++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null || true
    echo "stopped pid ${pid} (SIGKILL after ${timeout} s)"
  else
    echo "stopped pid ${pid}"
  fi
  rm -f "${PID_FILE}"
}

# probe : the control endpoint's connections, qps and clock offset on one line.
probe() {
  [[ -n ${CONTROL} ]] || { echo; return 0; }
  local s
  s=$(curl -fsS -m 3 "${CONTROL}/stats" 2>&1) || { echo "control endpoint: ${s}"; return 1; }
  printf '%s\n' "${s}" | grep -o '"\(connections\|qps\|offsetMs\)":[-0-9.]*' | tr '\n' ' '
  echo
}

case ${ACTION}:${MODE} in
  mode:*) echo "${MODE}" ;;
  verify:*) verify ;;
  reload:systemd) run systemctl daemon-reload ;;
  reload:direct) echo "no systemd: nothing to reload" ;;
  start:systemd)
    need_unit
    if systemctl is-active --quiet "${NAME}"; then
      echo "already running: pid $(systemctl show -p MainPID --value "${NAME}")"
      exit 0
    fi
    run systemctl enable --now "${NAME}"
    ((DRY_RUN)) || { systemctl is-active "${NAME}" >/dev/null && echo "started: pid $(systemctl show -p MainPID --value "${NAME}")"; }
    ;;
  start:direct) start_direct ;;
  stop:systemd)
    if ! systemctl is-active --quiet "${NAME}"; then
      echo "not running"
      exit 0
    fi
    run systemctl stop "${NAME}"
    ((DRY_RUN)) || echo "stopped ($(systemctl is-active "${NAME}" || true))"
    ;;
  stop:direct) stop_direct ;;
  status:systemd)
    state=$(systemctl is-active "${NAME}") || { echo "${state}"; exit 1; }
    printf 'running pid %s, ' "$(systemctl show -p MainPID --value "${NAME}")"
    probe
    ;;
  status:direct)
    pid=$(running_pid) || { echo "stopped"; exit 1; }
    printf 'running pid %s, ' "${pid}"
    probe
    ;;
  logs:systemd) journalctl -u "${NAME}" -n "${LINES}" --no-pager -o short-iso ;;
  logs:direct)
    if [[ -f ${LOG_FILE} ]]; then tail -n "${LINES}" "${LOG_FILE}"; else echo "no log yet (${LOG_FILE})"; fi
    ;;
esac
