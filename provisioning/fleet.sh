#!/usr/bin/env bash
# shellcheck disable=SC2317 # the act_* functions are called indirectly, by for_each
# Runs one action on every VM of an inventory in parallel and prints a per-VM result table; exits 1
# when any VM failed, 2 on a usage or inventory error. Transports: ssh (real VMs) and netns (network
# namespaces on this machine, see netns.sh). Format of the inventory: provisioning/README.md.
set -euo pipefail
HB_PROG=fleet.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "${HERE}/lib/common.sh"
# shellcheck source=lib/inventory.sh
. "${HERE}/lib/inventory.sh"
# shellcheck source=lib/transport.sh
. "${HERE}/lib/transport.sh"

usage() {
  cat <<'USAGE'
usage: fleet.sh [options] COMMAND [ARGS]

commands:
  check                 validate the inventory; print each VM's agent command line
  unit NAME             print the systemd unit rendered for VM NAME
  tune                  copy host-tune.sh to every VM and run it (sysctls, limits, source-IP
                        aliases, chrony client of chrony-server; controller-ssh: chrony server)
  deploy                copy dist/hongbao.cjs, agentctl.sh, the unit and agent.env (HONGBAO_TOKEN)
                        to every VM; systemd-analyze verify the unit there
  start | stop | restart    the agents: the systemd unit; where systemd is not PID 1 (or the VM
                        has an fsroot), agentctl.sh runs the unit's ExecStart as its User= with
                        its LimitNOFILE, PID and log under the VM's /run and /var/log
  status                agent state and its control endpoint's connections/qps
  logs [-n LINES]       the agents' last log lines [50]
  qps Q [--at EPOCH|+S] [--via auto|agents|controller]
                        retarget the fleet to Q shakes/s from second --at (default now + 2 s):
                        via the controller's POST /qps when the inventory names one (auto), else
                        POST /qps {qps, at} to every agent's control endpoint, all with the same at
  ansible-inventory     the inventory as an Ansible JSON inventory (provisioning/ansible/inventory.sh)

options:
  -i, --inventory FILE  inventory [$HONGBAO_INVENTORY or provisioning/inventory]
  -t, --transport ssh|netns   [ssh]
  --run-id ID           netns transport: the run of netns.sh whose namespaces are the VMs
  --dist FILE           the agent bundle to deploy [dist/hongbao.cjs]
  --only NAME[,NAME]    act on these VMs only
  --parallel N          VMs at a time [32]
  --ssh-option OPT      extra ssh -o option (repeatable), e.g. --ssh-option StrictHostKeyChecking=accept-new;
                        an ssh_config file for all VMs: ssh-config=FILE in the inventory (ssh -F)
  --dry-run             print, per VM, the exact commands it would run; run nothing
  -v, --verbose         print every VM's full output after the table
  -h, --help            this text
USAGE
}

INVENTORY=${HONGBAO_INVENTORY:-${HERE}/inventory}
DIST=${HERE}/../dist/hongbao.cjs
ONLY='' PARALLEL=32 VERBOSE=0 CMD=''
declare -a CMD_ARGS=()
while (($#)); do
  case $1 in
    -i | --inventory) need_arg "$@"; INVENTORY=$2; shift 2 ;;
    -t | --transport) need_arg "$@"; TRANSPORT=$2; shift 2 ;;
    --run-id) need_arg "$@"; NETNS_RUN=$2; shift 2 ;;
    --dist) need_arg "$@"; DIST=$2; shift 2 ;;
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --parallel) need_arg "$@"; PARALLEL=$2; shift 2 ;;
    --ssh-option) need_arg "$@"; SSH_OPTS+=(-o "$2"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -v | --verbose) VERBOSE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) if [[ -n ${CMD} ]]; then CMD_ARGS+=("$1"); shift; else usage_error "unknown option '$1'"; fi ;;
    *) if [[ -z ${CMD} ]]; then CMD=$1; else CMD_ARGS+=("$1"); fi; shift ;;
  esac
done
[[ -n ${CMD} ]] || usage_error "no command (check, unit, tune, deploy, start, stop, restart, status, logs, qps, ansible-inventory)"
case ${CMD} in check | unit | tune | deploy | start | stop | restart | status | logs | qps | ansible-inventory) ;; *) usage_error "unknown command '${CMD}'" ;; esac
[[ ${TRANSPORT} == ssh || ${TRANSPORT} == netns ]] || usage_error "--transport must be ssh or netns, got '${TRANSPORT}'"
int_in "${PARALLEL}" 1 1024 || usage_error "--parallel must be an integer from 1 to 1024, got '${PARALLEL}'"
if [[ ${TRANSPORT} == netns ]]; then
  [[ ${NETNS_RUN} =~ ^[a-z0-9]{1,6}$ ]] || usage_error "--transport netns needs --run-id (1-6 of a-z, 0-9), got '${NETNS_RUN}'"
fi

inventory_load "${INVENTORY}"
[[ -z ${G[ssh-config]} ]] || SSH_OPTS=(-F "${G[ssh-config]}" "${SSH_OPTS[@]}")
if [[ ${TRANSPORT} == netns ]]; then
  # In a namespace the agent runs from the run's directory with this machine's node, as root.
  G[node]=$(command -v node || echo /usr/bin/node)
fi

# VMs selected by --only.
declare -a SEL=()
if [[ -n ${ONLY} ]]; then
  IFS=, read -r -a names <<<"${ONLY}"
  for n in "${names[@]}"; do
    idx=$(vm_index "${n}")
    SEL+=("${idx}")
  done
else
  for ((i = 0; i < VM_COUNT; i++)); do SEL+=("${i}"); done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hongbao-fleet.XXXXXX")
trap 'rm -rf "${WORK}"' EXIT

# ---- rendering --------------------------------------------------------------------------------
exec_start() {
  local -a argv
  mapfile -t argv < <(agent_argv "$1")
  q "${argv[@]}"
}

# unit_vars I : the template variables of files/hongbao-agent.service.j2 for VM I, one KEY=VALUE a line.
unit_vars() {
  local i=$1 save es
  tx_paths "${i}"
  save=${G[install-dir]}
  G[install-dir]=${INSTALL_DIR}
  es=$(exec_start "${i}")
  G[install-dir]=${save}
  printf '%s\n' "hb_name=${VM_NAME[i]}" "hb_inventory=${INV_FILE##*/}" "hb_line=${VM_LINE[i]}" "hb_users=${VM_USERS[i]}" \
    "hb_user=${G[user]}" "hb_env_path=${ENV_PATH}" "hb_nofile=${G[nofile]}" "hb_exec_start=${es}"
}

render_unit() {
  local -a vars
  mapfile -t vars < <(unit_vars "$1")
  render_template "${HERE}/files/hongbao-agent.service.j2" "${vars[@]}"
}

# tune_args I : host-tune.sh's arguments for VM I, one a line (fleet.sh tune and the playbook's tune.yml).
tune_args() {
  local i=$1
  tx_paths "${i}"
  printf '%s\n' --source-ips "${VM_SRC[i]}" --iface "${VM_IFACE[i]}" --prefix "${VM_PREFIX[i]}" --user "${G[user]}" --nofile "${G[nofile]}"
  [[ -z ${G[chrony-server]} ]] || printf '%s\n' --chrony-server "${G[chrony-server]}"
  # A VM with an fsroot shares this kernel and filesystem with others: files under it, only
  # per-namespace settings live.
  [[ -z ${FSROOT} ]] || printf '%s\n' --root "${FSROOT}" --netns
}

# TUNE_FILES : what host-tune.sh needs next to it on the VM.
TUNE_FILES=(host-tune.sh lib/common.sh)
for f in "${HERE}"/files/*.j2; do TUNE_FILES+=("files/${f##*/}"); done

# put_tune_files I DIR : copies host-tune.sh, its library and the templates to DIR on VM I.
put_tune_files() {
  local i=$1 dir=$2 f mode
  local -a put=()
  for f in "${TUNE_FILES[@]}"; do
    mode=0644
    [[ ${f} != host-tune.sh ]] || mode=0755
    put+=("${HERE}/${f}" "${dir}/${f}" "${mode}")
  done
  tx_sh "${i}" "mkdir -p $(q "${dir}/lib" "${dir}/files")"
  tx_put "${i}" "${put[@]}"
}

# ---- per-VM actions (run in a subshell each; stdout+stderr go to the VM's output file) ------------
act_tune() {
  local i=$1
  local -a args
  tx_check "${i}"
  tx_paths "${i}"
  put_tune_files "${i}" "${INSTALL_DIR}"
  mapfile -t args < <(tune_args "${i}")
  tx_sh "${i}" "$(q bash "${INSTALL_DIR}/host-tune.sh" "${args[@]}")"
}

# The controller host as chrony server. Run like a VM (slot 0's target swapped for controller-ssh).
act_tune_controller() {
  VM_TARGET[0]=${G[controller-ssh]}
  VM_FSROOT[0]=''
  put_tune_files 0 "${G[install-dir]}"
  tx_sh 0 "$(q bash "${G[install-dir]}/host-tune.sh" --chrony-serve "$(chrony_allow)")"
}

# chrony_allow : the CIDR the controller's chrony serves [the /16 of chrony-server].
chrony_allow() {
  local allow=${G[chrony-allow]}
  if [[ -z ${allow} ]]; then
    is_ipv4 "${G[chrony-server]}" || die "controller-ssh needs chrony-allow=CIDR (chrony-server ${G[chrony-server]} is not an address)"
    allow=${G[chrony-server]%.*.*}.0.0/16
  fi
  echo "${allow}"
}

act_deploy() {
  local i=$1
  tx_check "${i}"
  tx_paths "${i}"
  [[ -r ${DIST} ]] || die "${DIST}: not found; run 'npm run build' first (or give --dist FILE)"
  if [[ ${VM_CHOST[i]} != 127.* && ${VM_CHOST[i]} != localhost && -z ${HONGBAO_TOKEN:-} ]]; then
    die "control-host ${VM_CHOST[i]} is not loopback, so the agent needs a token: export HONGBAO_TOKEN before deploy"
  fi
  local dir=${WORK}/${VM_NAME[i]}
  mkdir -p "${dir}"
  render_unit "${i}" >"${dir}/${UNIT_NAME}"
  (umask 077 && agent_env >"${dir}/agent.env")
  # The agent's user: created on a VM; a VM with an fsroot shares this machine, so it must exist.
  local user_cmd
  user_cmd="id -u $(q "${G[user]}") >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin $(q "${G[user]}")"
  [[ -z ${FSROOT} ]] || user_cmd="id -u $(q "${G[user]}") >/dev/null 2>&1 || { echo 'user ${G[user]} does not exist; a VM with an fsroot creates none: set user= to an existing one'; exit 1; }"
  tx_sh "${i}" "set -e; test -x $(q "${G[node]}") || { echo 'node not found at ${G[node]} (install Node >= 20 or set node= in the inventory)'; exit 1; }; ${user_cmd}; mkdir -p $(q "${INSTALL_DIR}" "${ENV_PATH%/*}" "${UNIT_PATH%/*}")"
  tx_put "${i}" "${DIST}" "${INSTALL_DIR}/hongbao.cjs" 0644 "${HERE}/agentctl.sh" "${INSTALL_DIR}/agentctl.sh" 0755 \
    "${dir}/agent.env" "${ENV_PATH}" 0600 "${dir}/${UNIT_NAME}" "${UNIT_PATH}" 0644
  [[ " ${TX_CHANGED[*]} " != *" ${UNIT_PATH} "* ]] || tx_agentctl "${i}" reload
  tx_agentctl "${i}" verify
  echo "deployed $(sha256sum "${DIST}" | cut -c1-12) to ${INSTALL_DIR}"
}

# agent_env : the agent's EnvironmentFile (the Ansible playbook writes the same).
agent_env() {
  if [[ -n ${HONGBAO_TOKEN:-} ]]; then
    printf 'HONGBAO_TOKEN=%s\n' "${HONGBAO_TOKEN}"
  else
    printf '# no HONGBAO_TOKEN: the control endpoint listens on loopback only\n'
  fi
}

act_start() { tx_check "$1"; tx_agentctl "$1" start; }
act_stop() { tx_check "$1"; tx_agentctl "$1" stop; }
act_restart() { tx_check "$1"; tx_agentctl "$1" stop; tx_agentctl "$1" start; }
act_status() { tx_check "$1"; tx_agentctl "$1" status --control "http://$(control_addr "$1"):${VM_CPORT[$1]}"; }
act_logs() { tx_check "$1"; tx_agentctl "$1" logs -n "${LOG_LINES}"; }

# POST /qps {qps, at} to the agent's control endpoint from the VM itself (at its control-host;
# loopback for 0.0.0.0), with the token from its agent.env.
act_qps() {
  local i=$1 host
  tx_check "${i}"
  tx_paths "${i}"
  host=$(control_addr "${i}")
  tx_sh "${i}" "set -a; if [ -f $(q "${ENV_PATH}") ]; then . $(q "${ENV_PATH}"); fi; set +a; curl -fsS -m 5 -X POST -H 'content-type: application/json' \${HONGBAO_TOKEN:+-H \"authorization: Bearer \$HONGBAO_TOKEN\"} -d '{\"qps\":${QPS},\"at\":${QPS_AT}}' http://${host}:${VM_CPORT[i]}/qps && echo"
}

# ---- the Ansible inventory ----------------------------------------------------------------------
# JSON_OUT accumulates "key": value pairs: jkv KEY STRING, jraw KEY JSON.
JSON_OUT=''
jkv() { local v; json_str v "$2"; JSON_OUT+="\"$1\": ${v}, "; }
jraw() { JSON_OUT+="\"$1\": $2, "; }

# jhost TARGET : ansible_host, ansible_user, ansible_port and the ssh config of an ssh target.
jhost() {
  local t=$1
  if [[ ${t} == *:* ]]; then
    jraw ansible_port "${t##*:}"
    t=${t%:*}
  fi
  [[ ${t} != *@* ]] || jkv ansible_user "${t%%@*}"
  jkv ansible_host "${t#*@}"
  # With an ssh-config, that file decides connection sharing too (Ansible's own default ssh_args,
  # -C and ControlPersist under ~/.ansible/cp, would keep connections the file does not know of).
  if [[ -n ${G[ssh-config]} ]]; then
    jkv ansible_ssh_common_args "-F ${G[ssh-config]}"
    jkv ansible_ssh_args ''
  fi
}

# ansible_inventory : the VMs (group hongbao_agents) and the controller-ssh host (group
# hongbao_controller) with everything the playbooks need, computed here as fleet.sh computes it:
# the unit's template variables, host-tune.sh's arguments, the paths under the VM's fsroot.
ansible_inventory() {
  local i kv list sep='' dist
  local -a names=() tune vars
  dist=$(cd "$(dirname "${DIST}")" && pwd)/${DIST##*/}
  for i in "${SEL[@]}"; do
    [[ ${VM_TARGET[i]} != - ]] || die "${VM_NAME[i]} (${INV_FILE}:${VM_LINE[i]}): field 'target' is '-': Ansible reaches VMs over ssh"
    [[ ${VM_NAME[i]} != controller || -z ${G[controller-ssh]} ]] || die "${VM_NAME[i]}: the name 'controller' is the controller-ssh host's in the Ansible inventory"
    names+=("${VM_NAME[i]}")
  done
  json_list list "${names[@]}"
  JSON_OUT=''
  jkv hb_dist "${dist}"
  jkv hb_controller "${G[controller]}"
  printf '{\n  "hongbao_agents": {"hosts": %s, "vars": {%s}},\n' "${list}" "${JSON_OUT%, }"
  if [[ -n ${G[controller-ssh]} ]]; then
    printf '  "hongbao_controller": {"hosts": ["controller"]},\n'
  else
    printf '  "hongbao_controller": {"hosts": []},\n'
  fi
  printf '  "_meta": {"hostvars": {\n'
  for i in "${SEL[@]}"; do
    tx_paths "${i}"
    mapfile -t tune < <(tune_args "${i}")
    mapfile -t vars < <(unit_vars "${i}")
    JSON_OUT=''
    jhost "${VM_TARGET[i]}"
    for kv in "${vars[@]}"; do jkv "${kv%%=*}" "${kv#*=}"; done
    jkv hb_fsroot "${FSROOT}"
    jkv hb_install_dir "${INSTALL_DIR}"
    jkv hb_unit_path "${UNIT_PATH}"
    jkv hb_node "${G[node]}"
    jkv hb_control_url "http://$(control_addr "${i}"):${VM_CPORT[i]}"
    if [[ ${VM_CHOST[i]} != 127.* && ${VM_CHOST[i]} != localhost ]]; then jraw hb_needs_token true; else jraw hb_needs_token false; fi
    json_list list "${tune[@]}"
    jraw hb_tune_args "${list}"
    printf '%s    "%s": {%s}' "${sep}" "${VM_NAME[i]}" "${JSON_OUT%, }"
    sep=$',\n'
  done
  if [[ -n ${G[controller-ssh]} ]]; then
    JSON_OUT=''
    jhost "${G[controller-ssh]}"
    jkv hb_fsroot ''
    jkv hb_install_dir "${G[install-dir]}"
    json_list list --chrony-serve "$(chrony_allow)"
    jraw hb_tune_args "${list}"
    printf '%s    "controller": {%s}' "${sep}" "${JSON_OUT%, }"
  fi
  printf '\n  }}\n}\n'
}

# ---- the parallel runner -------------------------------------------------------------------------
# for_each ACTION : runs act_ACTION for every selected VM, at most PARALLEL at a time (one at a time
# under --dry-run, for a readable plan); fills RC[i]. Each VM runs in a background subshell (so that
# `set -e` holds inside it) that leaves its exit code in WORK/I.rc.
declare -A RC=()
for_each() {
  local action=$1 i running=0 pid
  local -a pids=()
  for i in "${SEL[@]}"; do
    (
      trap 'echo $? >"${WORK}/${i}.rc"' EXIT
      act_"${action}" "${i}"
    ) >"${WORK}/${i}.out" 2>&1 &
    pid=$!
    if ((DRY_RUN)); then
      wait "${pid}" || true
      continue
    fi
    pids+=("${pid}")
    running=$((running + 1))
    if ((running >= PARALLEL)); then
      wait -n || true
      running=$((running - 1))
    fi
  done
  for pid in "${pids[@]}"; do wait "${pid}" || true; done
  for i in "${SEL[@]}"; do
    RC[${i}]=$(cat "${WORK}/${i}.rc" 2>/dev/null || echo 125)
  done
}

# table : the per-VM result table; returns 1 when any VM failed.
table() {
  local i failed=0 ok=0 detail w=4 tw=6 result
  for i in "${SEL[@]}"; do
    ((${#VM_NAME[i]} > w)) && w=${#VM_NAME[i]}
    ((${#VM_TARGET[i]} > tw)) && tw=${#VM_TARGET[i]}
  done
  [[ ${TRANSPORT} == netns ]] && tw=$((${#NETNS_RUN} + w + 4))
  if ((DRY_RUN)); then
    for i in "${SEL[@]}"; do
      printf '== %s (%s)\n' "${VM_NAME[i]}" "$(target_of "${i}")"
      cat "${WORK}/${i}.out"
    done
  elif ((VERBOSE)); then
    for i in "${SEL[@]}"; do
      printf '== %s (%s)\n' "${VM_NAME[i]}" "$(target_of "${i}")"
      cat "${WORK}/${i}.out"
    done
  fi
  printf "%-${w}s  %-${tw}s  %-6s  %s\n" VM TARGET RESULT DETAIL
  for i in "${SEL[@]}"; do
    detail=$(grep -v '^[[:space:]]*$' "${WORK}/${i}.out" | tail -n 1 | cut -c1-160 || true)
    if ((RC[${i}] == 0)); then
      result=ok
      ok=$((ok + 1))
      ((DRY_RUN)) && result=dry-run detail="$(grep -c '^+ ' "${WORK}/${i}.out" || true) commands"
    else
      result=FAILED
      failed=$((failed + 1))
    fi
    printf "%-${w}s  %-${tw}s  %-6s  %s\n" "${VM_NAME[i]}" "$(target_of "${i}")" "${result}" "${detail}"
  done
  if ((failed)); then
    for i in "${SEL[@]}"; do
      ((RC[${i}] == 0)) && continue
      printf '\n-- %s failed (exit %d); its output:\n' "${VM_NAME[i]}" "${RC[${i}]}" >&2
      tail -n 20 "${WORK}/${i}.out" >&2
    done
  fi
  echo "fleet.sh ${CMD}: ${ok} ok, ${failed} failed (${TRANSPORT})"
  ((failed == 0))
}

target_of() {
  if [[ ${TRANSPORT} == netns ]]; then ns_name "$1"; else echo "${VM_TARGET[$1]}"; fi
}

# ---- commands -------------------------------------------------------------------------------
case ${CMD} in
  check)
    echo "inventory ${INV_FILE}: ${VM_COUNT} VMs, total-users ${G[total-users]}, server ${G[server]}, qps ${G[qps]}"
    for i in "${SEL[@]}"; do
      printf '%s (line %s, %s): %s\n' "${VM_NAME[i]}" "${VM_LINE[i]}" "$(target_of "${i}")" "$(unit_vars "${i}" | sed -n 's/^hb_exec_start=//p')"
    done
    exit 0
    ;;
  unit)
    ((${#CMD_ARGS[@]} == 1)) || usage_error "unit needs one VM name"
    idx=$(vm_index "${CMD_ARGS[0]}")
    render_unit "${idx}"
    exit 0
    ;;
  ansible-inventory)
    [[ ${TRANSPORT} == ssh ]] || usage_error "ansible-inventory describes the VMs as ssh reaches them: no --transport netns"
    ansible_inventory
    exit 0
    ;;
  logs)
    LOG_LINES=50
    if ((${#CMD_ARGS[@]})); then
      [[ ${CMD_ARGS[0]} == -n && ${#CMD_ARGS[@]} == 2 ]] || usage_error "logs takes only -n LINES"
      LOG_LINES=${CMD_ARGS[1]}
      int_in "${LOG_LINES}" 1 100000 || usage_error "logs -n must be an integer from 1 to 100000, got '${LOG_LINES}'"
    fi
    VERBOSE=1
    ;;
  qps)
    ((${#CMD_ARGS[@]} >= 1)) || usage_error "qps needs a value: fleet.sh qps 60000"
    QPS=${CMD_ARGS[0]} QPS_AT='' VIA=auto AT_GIVEN=0
    set -- "${CMD_ARGS[@]:1}"
    while (($#)); do
      case $1 in
        --at) need_arg "$@"; QPS_AT=$2; AT_GIVEN=1; shift 2 ;;
        --via) need_arg "$@"; VIA=$2; shift 2 ;;
        *) usage_error "qps: unknown argument '$1'" ;;
      esac
    done
    int_in "${QPS}" 0 "${G[total-users]}" || usage_error "qps must be an integer from 0 to ${G[total-users]} (total-users), got '${QPS}'"
    [[ ${VIA} == auto || ${VIA} == agents || ${VIA} == controller ]] || usage_error "qps --via must be auto, agents or controller, got '${VIA}'"
    if [[ ${VIA} == auto ]]; then
      if [[ -n ${G[controller]} ]]; then VIA=controller; else VIA=agents; fi
    fi
    now=$(date +%s)
    case ${QPS_AT} in
      '') QPS_AT=$((now + 2)) ;;
      +*) int_in "${QPS_AT#+}" 0 86400 || usage_error "qps --at +S needs S from 0 to 86400, got '${QPS_AT}'"; QPS_AT=$((now + ${QPS_AT#+})) ;;
      *) int_in "${QPS_AT}" 1 99999999999 || usage_error "qps --at must be an epoch second or +SECONDS, got '${QPS_AT}'" ;;
    esac
    if [[ ${VIA} == controller ]]; then
      [[ -n ${G[controller]} ]] || usage_error "qps --via controller: the inventory has no controller="
      url=${G[controller]%/}/qps
      body="{\"qps\":${QPS}}"
      # Without --at the controller picks it (now + its lead) and fans {qps, at} out to the agents.
      [[ ${AT_GIVEN} == 0 ]] || body="{\"qps\":${QPS},\"at\":${QPS_AT}}"
      auth=()
      [[ -z ${HONGBAO_TOKEN:-} ]] || auth=(-H "authorization: Bearer ${HONGBAO_TOKEN}")
      post=(curl -sS -m 15 -X POST -H 'content-type: application/json' -d "${body}" -w '\n%{http_code}' "${url}")
      if ((DRY_RUN)); then
        # shellcheck disable=SC2016 # printed, not expanded: the token stays out of the output
        ((${#auth[@]} == 0)) || auth=(-H 'authorization: Bearer $HONGBAO_TOKEN')
        printf '+ %s\n' "$(q "${post[@]:0:6}" "${auth[@]}" "${post[@]:6}")"
        exit 0
      fi
      out=$("${post[@]:0:6}" "${auth[@]}" "${post[@]:6}" 2>&1) || die "POST ${url} failed: ${out}"
      code=${out##*$'\n'}
      out=${out%$'\n'*}
      [[ ${code} == 200 ]] || die "POST ${url} answered ${code}: ${out}"
      # One row per agent from {qps, at, agents: [{id, ok, error?}]}.
      # shellcheck disable=SC2016 # JavaScript, not shell
      node -e '
        const r = JSON.parse(process.argv[1]);
        const agents = r.agents ?? [];
        const w = Math.max(5, ...agents.map((a) => String(a.id).length));
        console.log(`qps ${r.qps} at ${r.at} (${r.at - Math.floor(Date.now() / 1000)} s from now), via the controller ${process.argv[2]}`);
        console.log(`${"AGENT".padEnd(w)}  RESULT  DETAIL`);
        for (const a of agents) console.log(`${String(a.id).padEnd(w)}  ${(a.ok ? "ok" : "FAILED").padEnd(6)}  ${a.ok ? "" : a.error ?? ""}`);
        const bad = agents.filter((a) => !a.ok).length;
        console.log(`fleet.sh qps: ${agents.length - bad} ok, ${bad} failed (controller)`);
        process.exit(bad || agents.length === 0 ? 1 : 0);
      ' "${out}" "${G[controller]}"
      exit
    fi
    echo "qps ${QPS} at ${QPS_AT} ($((QPS_AT - now)) s from now), via the agents' control endpoints"
    ;;
esac

if [[ ${CMD} == tune && -n ${G[controller-ssh]} ]]; then
  if [[ ${TRANSPORT} == netns ]]; then
    echo "controller: chrony server skipped (netns: the controller is this host; the clock is host-wide)"
  else
    (
      trap 'echo $? >"${WORK}/controller.rc"' EXIT
      act_tune_controller
    ) >"${WORK}/controller.out" 2>&1 &
    wait "$!" || true
    if ((DRY_RUN)); then
      echo "== controller (${G[controller-ssh]})"
      cat "${WORK}/controller.out"
    elif [[ $(<"${WORK}/controller.rc") == 0 ]]; then
      echo "controller: ${G[controller-ssh]}: ok: $(grep -v '^[[:space:]]*$' "${WORK}/controller.out" | tail -n 1)"
    else
      echo "controller: ${G[controller-ssh]}: FAILED; its output:"
      tail -n 20 "${WORK}/controller.out"
      CONTROLLER_FAILED=1
    fi
  fi
fi

for_each "${CMD}"
rc=0
table || rc=1
((${CONTROLLER_FAILED:-0} == 0)) || rc=1
exit "${rc}"
