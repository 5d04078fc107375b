# shellcheck shell=bash
# shellcheck disable=SC2034 # TX_CHANGED, INSTALL_DIR, UNIT_PATH, ...: globals that fleet.sh reads
# Transports of fleet.sh: how a per-VM action reaches its VM. Sourced after lib/common.sh and
# lib/inventory.sh. Every per-VM action uses only these functions:
#
#   tx_paths I           sets INSTALL_DIR UNIT_PATH ENV_PATH (and LOG_PATH PID_PATH for netns)
#   tx_check I           the VM is reachable in principle (namespace exists; ssh needs nothing)
#   tx_sh I SCRIPT       runs a shell script as root on VM I
#   tx_put I SRC DST MODE  copies a local file to DST on VM I when it differs ("unchanged" else);
#                        TX_CHANGED=1 when it copied; fails when the copy failed
#   tx_start I / tx_stop I / tx_status I / tx_logs I N   agent lifecycle
#
# ssh:   ssh/scp to the inventory's target; the agent is the systemd unit hongbao-agent.service.
# netns: `ip netns exec hb-RUN-NAME ...`; files live in /tmp/hongbao-netns/RUN/NAME/; the agent is
#        the unit's ExecStart line started with setsid, its PID in agent.pid there.

TRANSPORT=${TRANSPORT:-ssh}
NETNS_RUN=${NETNS_RUN:-}
NETNS_BASE=${NETNS_BASE:-/tmp/hongbao-netns}
declare -a SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3)
UNIT_NAME=hongbao-agent.service

# control_addr I : where the agent's control endpoint answers, seen from its own VM.
control_addr() {
  local h=${VM_CHOST[$1]}
  [[ ${h} != 0.0.0.0 ]] || h=127.0.0.1
  echo "${h}"
}

ns_name() { echo "hb-${NETNS_RUN}-${VM_NAME[$1]}"; }

# ssh_target I : [USER@]HOST, and SSH_PORT_OPTS for a :PORT suffix.
declare -a SSH_PORT=()
ssh_split() {
  local t=${VM_TARGET[$1]}
  SSH_PORT=()
  if [[ ${t} == *:* ]]; then
    SSH_PORT=(-p "${t##*:}")
    t=${t%:*}
  fi
  SSH_HOST=${t}
}

tx_paths() {
  local i=$1
  if [[ ${TRANSPORT} == netns ]]; then
    local dir=${NETNS_BASE}/${NETNS_RUN}/${VM_NAME[i]}
    INSTALL_DIR=${dir}
    UNIT_PATH=${dir}/${UNIT_NAME}
    ENV_PATH=${dir}/agent.env
    LOG_PATH=${dir}/agent.log
    PID_PATH=${dir}/agent.pid
  else
    INSTALL_DIR=${G[install-dir]}
    UNIT_PATH=/etc/systemd/system/${UNIT_NAME}
    ENV_PATH=/etc/hongbao/agent.env
    LOG_PATH='' PID_PATH=''
  fi
}

tx_check() {
  local i=$1
  if [[ ${TRANSPORT} == netns ]]; then
    ((DRY_RUN)) && return 0
    [[ -e /run/netns/$(ns_name "${i}") ]] ||
      die "${VM_NAME[i]}: namespace $(ns_name "${i}") does not exist (bring it up: provisioning/netns.sh up --run-id ${NETNS_RUN} ...)"
  else
    [[ ${VM_TARGET[i]} != - ]] || die "${VM_NAME[i]} (${INV_FILE}:${VM_LINE[i]}): field 'target' is '-', which only the netns transport accepts"
  fi
}

tx_sh() {
  local i=$1 script=$2
  if [[ ${TRANSPORT} == netns ]]; then
    run ip netns exec "$(ns_name "${i}")" bash -c "${script}"
  else
    ssh_split "${i}"
    # The remote login shell (root's: bash, or a POSIX sh) runs the script; scripts stay POSIX.
    run ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "${script}"
  fi
}

TX_CHANGED=0
tx_put() {
  local i=$1 src=$2 dst=$3 mode=$4 sum have
  TX_CHANGED=0
  sum=$(sha256sum "${src}" | cut -d' ' -f1) || return 1
  if [[ ${TRANSPORT} == netns ]]; then
    if [[ -f ${dst} ]] && cmp -s "${src}" "${dst}"; then
      echo "unchanged ${dst}"
      return 0
    fi
    run install -D -m "${mode}" "${src}" "${dst}" || return 1
  else
    ssh_split "${i}"
    if ((!DRY_RUN)); then
      # shellcheck disable=SC2029 # the command is built here on purpose
      have=$(ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "sha256sum $(q "${dst}") 2>/dev/null || true" | cut -d' ' -f1) || return 1
      if [[ ${have} == "${sum}" ]]; then
        echo "unchanged ${dst}"
        return 0
      fi
    else
      printf '+ %s   # skip the copy if it prints %s\n' "$(q ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "sha256sum $(q "${dst}") 2>/dev/null || true")" "${sum}"
    fi
    local port=()
    ((${#SSH_PORT[@]} == 0)) || port=(-P "${SSH_PORT[1]}")
    run scp -q "${SSH_OPTS[@]}" "${port[@]}" "${src}" "${SSH_HOST}:${dst}.new" || return 1
    run ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "chmod ${mode} $(q "${dst}.new") && mv -f $(q "${dst}.new") $(q "${dst}")" || return 1
  fi
  TX_CHANGED=1
  if ((DRY_RUN)); then echo "would copy ${dst}"; else echo "copied ${dst}"; fi
}

# The netns transport starts the unit's ExecStart line (with its LimitNOFILE, as far as the hard
# limit allows, and its EnvironmentFile) in the namespace, in a session of its own.
tx_start() {
  local i=$1
  tx_paths "${i}"
  if [[ ${TRANSPORT} != netns ]]; then
    tx_sh "${i}" "systemctl enable --now ${UNIT_NAME} && systemctl is-active ${UNIT_NAME} >/dev/null && echo \"started: \$(systemctl show -p MainPID --value ${UNIT_NAME} | sed 's/^/pid /')\""
    return
  fi
  local pid exec_line nofile ns
  ns=$(ns_name "${i}")
  if ((!DRY_RUN)); then
    [[ -f ${UNIT_PATH} ]] || die "${VM_NAME[i]}: ${UNIT_PATH} missing: run 'fleet.sh deploy' first"
    if pid=$(netns_agent_pid "${i}"); then
      echo "already running: pid ${pid}"
      return 0
    fi
    exec_line=$(sed -n 's/^ExecStart=//p' "${UNIT_PATH}")
    nofile=$(sed -n 's/^LimitNOFILE=//p' "${UNIT_PATH}")
  else
    exec_line="\$(sed -n 's/^ExecStart=//p' ${UNIT_PATH})"
    nofile="\$(sed -n 's/^LimitNOFILE=//p' ${UNIT_PATH})"
  fi
  local script
  script="ulimit -n ${nofile} 2>/dev/null || ulimit -n \"\$(ulimit -Hn)\"; set -a; if [ -f $(q "${ENV_PATH}") ]; then . $(q "${ENV_PATH}"); fi; set +a; echo \$\$ > $(q "${PID_PATH}"); exec ${exec_line}"
  if ((DRY_RUN)); then
    printf '+ %s </dev/null >>%s 2>&1 &\n' "$(q setsid ip netns exec "${ns}" bash -c "${script}")" "$(q "${LOG_PATH}")"
    return 0
  fi
  rm -f "${PID_PATH}"
  setsid ip netns exec "${ns}" bash -c "${script}" </dev/null >>"${LOG_PATH}" 2>&1 &
  local n
  for ((n = 0; n < 50; n++)); do
    [[ -s ${PID_PATH} ]] && break
    sleep 0.1
  done
  sleep 0.5
  if pid=$(netns_agent_pid "${i}"); then
    echo "started: pid ${pid}"
  else
    echo "agent exited at once; last lines of ${LOG_PATH}:"
    tail -n 5 "${LOG_PATH}" || true
    return 1
  fi
}

# netns_agent_pid I : the running agent's PID (from agent.pid, checked to be our agent), or fail.
netns_agent_pid() {
  local pid
  tx_paths "$1"
  [[ -s ${PID_PATH} ]] || return 1
  pid=$(<"${PID_PATH}")
  [[ ${pid} =~ ^[0-9]+$ ]] || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "${INSTALL_DIR}/hongbao.cjs agent" || return 1
  echo "${pid}"
}

tx_stop() {
  local i=$1 pid n
  tx_paths "${i}"
  if [[ ${TRANSPORT} != netns ]]; then
    tx_sh "${i}" "systemctl stop ${UNIT_NAME} && echo \"stopped (\$(systemctl is-active ${UNIT_NAME} || true))\""
    return
  fi
  if ((DRY_RUN)); then
    # shellcheck disable=SC2016 # printed, not run
    printf '+ kill -TERM -- -"$(cat %s)"   # the agent session, SIGKILL after 15 s\n' "$(q "${PID_PATH}")"
    return 0
  fi
  if ! pid=$(netns_agent_pid "${i}"); then
    rm -f "${PID_PATH}"
    echo "not running"
    return 0
  fi
  kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}"
  for ((n = 0; n < 150; n++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null || true
    echo "stopped pid ${pid} (SIGKILL after 15 s)"
  else
    echo "stopped pid ${pid}"
  fi
  rm -f "${PID_PATH}"
}

# tx_status I : "running pid P, CONTROL-JSON-EXCERPT" or "stopped"; fails when stopped.
tx_status() {
  local i=$1 pid probe
  tx_paths "${i}"
  probe="s=\$(curl -fsS -m 3 http://$(control_addr "${i}"):${VM_CPORT[i]}/stats 2>&1) || { echo \"control endpoint: \$s\"; exit 1; }; printf '%s\n' \"\$s\" | grep -o '\"\\(connections\\|qps\\|offsetMs\\)\":[-0-9.]*' | tr '\n' ' '; echo"
  if [[ ${TRANSPORT} != netns ]]; then
    tx_sh "${i}" "state=\$(systemctl is-active ${UNIT_NAME}) || { echo \"\$state\"; exit 1; }; printf 'running pid %s, ' \"\$(systemctl show -p MainPID --value ${UNIT_NAME})\"; ${probe}"
    return
  fi
  if ((DRY_RUN)); then
    # shellcheck disable=SC2016 # printed, not run
    printf '+ kill -0 "$(cat %s)"\n' "$(q "${PID_PATH}")"
    tx_sh "${i}" "${probe}"
    return 0
  fi
  pid=$(netns_agent_pid "${i}") || { echo "stopped"; return 1; }
  printf 'running pid %s, ' "${pid}"
  tx_sh "${i}" "${probe}"
}

tx_logs() {
  local i=$1 lines=$2
  tx_paths "${i}"
  if [[ ${TRANSPORT} != netns ]]; then
    tx_sh "${i}" "journalctl -u ${UNIT_NAME} -n ${lines} --no-pager -o short-iso"
  else
    run tail -n "${lines}" "${LOG_PATH}"
  fi
}
