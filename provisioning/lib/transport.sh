# shellcheck shell=bash
# shellcheck disable=SC2034 # TX_CHANGED, INSTALL_DIR, UNIT_PATH, ...: globals that fleet.sh reads
# Transports of fleet.sh: how a per-VM action reaches its VM. Sourced after lib/common.sh and
# lib/inventory.sh. Every per-VM action uses only these functions:
#
#   tx_paths I           sets FSROOT INSTALL_DIR UNIT_PATH ENV_PATH of VM I
#   tx_check I           the VM is reachable in principle (namespace exists; ssh needs nothing)
#   tx_sh I SCRIPT       runs a shell script as root on VM I
#   tx_put I SRC DST MODE ...  copies local files to VM I where they differ ("unchanged" else);
#                        TX_CHANGED lists the DSTs it copied; fails when a copy failed
#   tx_agentctl I ACTION [ARGS]   agentctl.sh (deployed next to the bundle) on VM I: start, stop,
#                        status, logs, verify (systemd there, else the unit's ExecStart directly)
#
# ssh:   ssh/scp to the inventory's target (with `-F ssh-config` when the inventory names one).
# netns: `ip netns exec hb-RUN-NAME ...`; the VM's files live under its fsroot, by default
#        /tmp/hongbao-netns/RUN/NAME (the namespaces share this machine's filesystem).
# A VM with an fsroot keeps every file under it and runs the agent without systemd.

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
  FSROOT=${VM_FSROOT[i]}
  if [[ ${TRANSPORT} == netns && -z ${FSROOT} ]]; then FSROOT=${NETNS_BASE}/${NETNS_RUN}/${VM_NAME[i]}; fi
  INSTALL_DIR=${FSROOT}${G[install-dir]}
  UNIT_PATH=${FSROOT}/etc/systemd/system/${UNIT_NAME}
  ENV_PATH=${FSROOT}/etc/hongbao/agent.env
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

# tx_put I SRC DST MODE [SRC DST MODE ...] : copies each local SRC to DST on VM I when their
# contents differ, printing "copied DST" or "unchanged DST"; TX_CHANGED lists the DSTs it copied.
# Over ssh three connections per call, whatever the number of files: one sha256sum of every DST,
# one scp of the changed files into DIR-OF-FIRST-DST/.incoming, one chmod+mv of each into place.
declare -a TX_CHANGED=()
tx_put() {
  local i=$1 n k
  shift
  local -a src=() dst=() mode=() sums=() todo=()
  while (($#)); do src+=("$1") dst+=("$2") mode+=("$3"); shift 3; done
  TX_CHANGED=()
  n=${#src[@]}
  if [[ ${TRANSPORT} == netns ]]; then
    for ((k = 0; k < n; k++)); do
      if [[ -f ${dst[k]} ]] && cmp -s "${src[k]}" "${dst[k]}"; then
        echo "unchanged ${dst[k]}"
      else
        run install -D -m "${mode[k]}" "${src[k]}" "${dst[k]}" || return 1
        TX_CHANGED+=("${dst[k]}")
        echo "$( ((DRY_RUN)) && echo would copy || echo copied) ${dst[k]}"
      fi
    done
    return 0
  fi
  ssh_split "${i}"
  mapfile -t sums < <(sha256sum "${src[@]}" | cut -d' ' -f1)
  ((${#sums[@]} == n)) || return 1
  local -A have=()
  local line
  if ((DRY_RUN)); then
    printf '+ %s   # copy the files whose sums differ from %s\n' "$(q ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "sha256sum $(q "${dst[@]}") 2>/dev/null || true")" "${sums[*]}"
  else
    # shellcheck disable=SC2029 # the command is built here on purpose
    while read -r line; do
      have[${line#* }]=${line%% *}
    done < <(ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "sha256sum $(q "${dst[@]}") 2>/dev/null || true" | sed 's/  / /') || return 1
  fi
  local stage=${dst[0]%/*}/.incoming script=''
  local -a send=()
  for ((k = 0; k < n; k++)); do
    if [[ ${have[${dst[k]}]:-} == "${sums[k]}" ]]; then
      echo "unchanged ${dst[k]}"
      continue
    fi
    todo+=("${k}")
    # scp keeps the source's name: a link per file, named INDEX-NAME, keeps the names apart.
    local name=${k}-${dst[k]##*/}
    mkdir -p "${WORK}/put-${i}"
    ln -sfn "${src[k]}" "${WORK}/put-${i}/${name}"
    send+=("${WORK}/put-${i}/${name}")
    script+="chmod ${mode[k]} $(q "${stage}/${name}") && mv -f $(q "${stage}/${name}" "${dst[k]}") && "
  done
  ((${#todo[@]})) || return 0
  local port=()
  ((${#SSH_PORT[@]} == 0)) || port=(-P "${SSH_PORT[1]}")
  run ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "mkdir -p $(q "${stage}")" || return 1
  if ((DRY_RUN)); then
    printf '+ %s   # links to:' "$(q scp -q "${SSH_OPTS[@]}" "${port[@]}" "${send[@]}" "${SSH_HOST}:${stage}/")"
    for k in "${todo[@]}"; do printf ' %s' "$(q "${src[k]}")"; done
    echo
  else
    scp -q "${SSH_OPTS[@]}" "${port[@]}" "${send[@]}" "${SSH_HOST}:${stage}/" || return 1
  fi
  run ssh "${SSH_OPTS[@]}" "${SSH_PORT[@]}" "${SSH_HOST}" "${script}rmdir $(q "${stage}")" || return 1
  for k in "${todo[@]}"; do
    TX_CHANGED+=("${dst[k]}")
    echo "$( ((DRY_RUN)) && echo would copy || echo copied) ${dst[k]}"
  done
}

# tx_agentctl I ACTION [ARGS] : agentctl.sh ACTION on VM I (with --root for a VM with an fsroot).
tx_agentctl() {
  local i=$1
  shift
  tx_paths "${i}"
  local -a cmd=(bash "${INSTALL_DIR}/agentctl.sh")
  [[ -z ${FSROOT} ]] || cmd+=(--root "${FSROOT}")
  tx_sh "${i}" "$(q "${cmd[@]}" "$@")"
}
