# shellcheck shell=bash
# Reads and validates a fleet inventory (format: provisioning/README.md, example:
# provisioning/inventory.example). Sourced after lib/common.sh.
#
# After `inventory_load FILE` succeeds:
#   G[key]            global settings (defaults filled in)
#   VM_COUNT          number of VMs
#   VM_NAME[i] VM_TARGET[i] VM_SRC[i] VM_USERS[i] VM_LINE[i]
#   VM_WORKERS[i] VM_CPORT[i] VM_CHOST[i] VM_IFACE[i] VM_PREFIX[i]   (per-VM value or the global one)
#   VM_FSROOT[i]      the directory all of the VM's files live under ('' for /: a real VM)
# On the first batch of errors it prints every error as `FILE:LINE: ...` and exits 2.

declare -A G=()
declare -a VM_NAME=() VM_TARGET=() VM_SRC=() VM_USERS=() VM_LINE=() VM_WORKERS=() VM_CPORT=() VM_CHOST=() VM_IFACE=() VM_PREFIX=() VM_FSROOT=()
VM_COUNT=0
INV_FILE=''
declare -a INV_ERRORS=()

# Ports an agent can use per source address toward one server port, with the ip_local_port_range
# that host-tune.sh sets (1024-65535).
INV_PORTS_PER_IP=64512

INV_GLOBAL_KEYS='server total-users controller controller-ssh chrony-server chrony-allow ntp qps mode rule control-port control-host workers iface prefix install-dir node user nofile ssh-config'
INV_VM_KEYS='workers control-port control-host iface prefix fsroot'

inv_err() { INV_ERRORS+=("${INV_FILE}:$1: $2"); }

_inv_valid_global() {
  local lineno=$1 key=$2 value=$3
  case ${key} in
    server) [[ ${value} =~ ^(wss?|tcp)://[A-Za-z0-9.-]+:[0-9]{1,5}(/.*)?$ ]] || inv_err "${lineno}" "field 'server': '${value}' is not ws://HOST:PORT or tcp://HOST:PORT" ;;
    controller) [[ ${value} =~ ^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$ ]] || inv_err "${lineno}" "field 'controller': '${value}' is not http://HOST[:PORT]" ;;
    controller-ssh) [[ ${value} =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+$ ]] || inv_err "${lineno}" "field 'controller-ssh': '${value}' is not [USER@]HOST" ;;
    chrony-server) [[ ${value} =~ ^[A-Za-z0-9.-]+$ ]] || inv_err "${lineno}" "field 'chrony-server': '${value}' is not a host name or address" ;;
    chrony-allow) [[ ${value} =~ ^[0-9.]+/[0-9]{1,2}$ ]] || inv_err "${lineno}" "field 'chrony-allow': '${value}' is not an IPv4 CIDR (e.g. 10.10.0.0/16)" ;;
    ntp) [[ ${value} == off || ${value} =~ ^[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] || inv_err "${lineno}" "field 'ntp': '${value}' is not HOST[:PORT] or off" ;;
    total-users) int_in "${value}" 1 4294967295 || inv_err "${lineno}" "field 'total-users': '${value}' is not an integer from 1 to 4294967295" ;;
    qps) is_uint "${value}" || inv_err "${lineno}" "field 'qps': '${value}' is not a non-negative integer" ;;
    mode) [[ ${value} == spread || ${value} == burst ]] || inv_err "${lineno}" "field 'mode': '${value}' is not spread or burst" ;;
    rule) [[ ${value} == modulo || ${value} == window ]] || inv_err "${lineno}" "field 'rule': '${value}' is not modulo or window" ;;
    control-port) int_in "${value}" 1 65535 || inv_err "${lineno}" "field 'control-port': '${value}' is not a port from 1 to 65535" ;;
    control-host) [[ ${value} =~ ^[A-Za-z0-9.-]+$ ]] || inv_err "${lineno}" "field 'control-host': '${value}' is not an address or host name" ;;
    workers) int_in "${value}" 1 256 || inv_err "${lineno}" "field 'workers': '${value}' is not an integer from 1 to 256" ;;
    iface) [[ ${value} =~ ^[A-Za-z0-9._@-]{1,15}$ ]] || inv_err "${lineno}" "field 'iface': '${value}' is not an interface name" ;;
    prefix) int_in "${value}" 8 32 || inv_err "${lineno}" "field 'prefix': '${value}' is not a prefix length from 8 to 32" ;;
    install-dir) [[ ${value} =~ ^/[A-Za-z0-9._/-]+$ ]] || inv_err "${lineno}" "field 'install-dir': '${value}' is not an absolute path" ;;
    node) [[ ${value} =~ ^/[A-Za-z0-9._/-]+$ ]] || inv_err "${lineno}" "field 'node': '${value}' is not an absolute path" ;;
    user) [[ ${value} =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || inv_err "${lineno}" "field 'user': '${value}' is not a user name" ;;
    ssh-config) [[ ${value} =~ ^[A-Za-z0-9._/-]+$ ]] || inv_err "${lineno}" "field 'ssh-config': '${value}' is not a file name" ;;
    fsroot) [[ ${value} =~ ^/[A-Za-z0-9._/-]+$ && ${value} != */ ]] || inv_err "${lineno}" "field 'fsroot': '${value}' is not an absolute directory path (without a trailing /)" ;;
    nofile) int_in "${value}" 1024 16777216 || inv_err "${lineno}" "field 'nofile': '${value}' is not an integer from 1024 to 16777216" ;;
    *) return 1 ;;
  esac
  return 0
}

inventory_load() {
  INV_FILE=$1
  [[ -r ${INV_FILE} ]] || { printf '%s: inventory %s: not readable\n' "${HB_PROG}" "${INV_FILE}" >&2; exit 2; }
  G=([total-users]='' [controller]='' [controller-ssh]='' [chrony-server]='' [chrony-allow]='' [ntp]=off [qps]=0
    [mode]=spread [rule]=window [control-port]=9090 [control-host]='' [workers]='' [iface]=auto [prefix]=24
    [install-dir]=/opt/hongbao [node]=/usr/bin/node [user]=hongbao [nofile]=1048576 [server]='' [ssh-config]='')
  VM_NAME=() VM_TARGET=() VM_SRC=() VM_USERS=() VM_LINE=() VM_WORKERS=() VM_CPORT=() VM_CHOST=() VM_IFACE=() VM_PREFIX=() VM_FSROOT=()
  INV_ERRORS=()
  local -A seen_name=() seen_ip=() set_global=() vm_extra=()
  local lineno=0 raw line key value name target src users extra k v msg ip first count n i
  local -a fields
  while IFS= read -r raw || [[ -n ${raw} ]]; do
    lineno=$((lineno + 1))
    line=${raw%%#*}
    read -r -a fields <<<"${line}" || true
    ((${#fields[@]} > 0)) || continue
    if ((${#fields[@]} == 1)) && [[ ${fields[0]} == *=* ]]; then
      key=${fields[0]%%=*}
      value=${fields[0]#*=}
      if [[ " ${INV_GLOBAL_KEYS} " != *" ${key} "* ]]; then
        inv_err "${lineno}" "unknown setting '${key}' (known: ${INV_GLOBAL_KEYS// /, }; per VM only: fsroot)"
        continue
      fi
      _inv_valid_global "${lineno}" "${key}" "${value}" || true
      [[ -z ${set_global[${key}]:-} ]] || inv_err "${lineno}" "setting '${key}' given twice (first on line ${set_global[${key}]})"
      set_global[${key}]=${lineno}
      G[${key}]=${value}
      continue
    fi
    if ((${#fields[@]} < 4)); then
      inv_err "${lineno}" "a VM line needs 4 fields 'name target source-ips users', got ${#fields[@]}: '${line%"${line##*[![:space:]]}"}'"
      continue
    fi
    name=${fields[0]} target=${fields[1]} src=${fields[2]} users=${fields[3]}
    [[ ${name} =~ ^[a-z][a-z0-9-]{0,31}$ ]] || inv_err "${lineno}" "field 'name': '${name}' must be 1-32 of a-z, 0-9, - starting with a letter"
    if [[ -n ${seen_name[${name}]:-} ]]; then
      inv_err "${lineno}" "field 'name': '${name}' already used on line ${seen_name[${name}]}"
    fi
    seen_name[${name}]=${lineno}
    [[ ${target} == - || ${target} =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] ||
      inv_err "${lineno}" "field 'target' of ${name}: '${target}' is not [USER@]HOST[:PORT] (or - for the netns transport)"
    if msg=$(expand_ips "${src}"); then
      n=0
      while IFS= read -r ip; do
        n=$((n + 1))
        if [[ -n ${seen_ip[${ip}]:-} ]]; then
          inv_err "${lineno}" "field 'source-ips' of ${name}: ${ip} is already used on line ${seen_ip[${ip}]}"
        fi
        seen_ip[${ip}]=${lineno}
      done <<<"${msg}"
    else
      inv_err "${lineno}" "field 'source-ips' of ${name}: ${msg}"
      n=0
    fi
    if [[ ${users} =~ ^([0-9]{1,10}):([0-9]{1,10})$ ]]; then
      first=$((10#${BASH_REMATCH[1]}))
      count=$((10#${BASH_REMATCH[2]}))
      if ((count < 1 || count > 1000000)); then
        inv_err "${lineno}" "field 'users' of ${name}: COUNT ${count} is not from 1 to 1000000"
      elif ((n > 0 && (count + n - 1) / n > INV_PORTS_PER_IP)); then
        inv_err "${lineno}" "field 'users' of ${name}: ${count} users over ${n} source IPs need $(((count + n - 1) / n)) ports per IP, more than the ${INV_PORTS_PER_IP} of ip_local_port_range 1024-65535; add source IPs"
      fi
    else
      inv_err "${lineno}" "field 'users' of ${name}: '${users}' is not FIRST:COUNT (e.g. 0:60000)"
    fi
    vm_extra=([workers]='' [control-port]='' [control-host]='' [iface]='' [prefix]='' [fsroot]='')
    for extra in "${fields[@]:4}"; do
      k=${extra%%=*}
      v=${extra#*=}
      if [[ ${extra} != *=* || " ${INV_VM_KEYS} " != *" ${k} "* ]]; then
        inv_err "${lineno}" "field 5+ of ${name}: '${extra}' is not KEY=VALUE with KEY one of ${INV_VM_KEYS// /, }"
        continue
      fi
      _inv_valid_global "${lineno}" "${k}" "${v}" || true
      vm_extra[${k}]=${v}
    done
    VM_NAME+=("${name}") VM_TARGET+=("${target}") VM_SRC+=("${src}") VM_USERS+=("${users}") VM_LINE+=("${lineno}")
    VM_WORKERS+=("${vm_extra[workers]}") VM_CPORT+=("${vm_extra[control-port]}") VM_CHOST+=("${vm_extra[control-host]}") VM_IFACE+=("${vm_extra[iface]}") VM_PREFIX+=("${vm_extra[prefix]}") VM_FSROOT+=("${vm_extra[fsroot]}")
  done <"${INV_FILE}"
  VM_COUNT=${#VM_NAME[@]}

  ((VM_COUNT > 0)) || inv_err "${lineno}" "no VM lines (name target source-ips users)"
  [[ -n ${G[server]} ]] || inv_err 0 "setting 'server' is required (e.g. server=ws://10.10.0.2:1025)"

  # User ranges: disjoint, inside total-users (default: the end of the highest range).
  local max_end=0 end
  local -a ranges=()
  for ((i = 0; i < VM_COUNT; i++)); do
    [[ ${VM_USERS[i]} =~ ^([0-9]+):([0-9]+)$ ]] || continue
    first=$((10#${BASH_REMATCH[1]}))
    end=$((first + 10#${BASH_REMATCH[2]}))
    ((end > max_end)) && max_end=${end}
    ranges+=("${first} ${end} ${i}")
  done
  [[ -n ${G[total-users]} ]] || G[total-users]=${max_end}
  local prev_end=-1 prev_i=-1 s e j
  while read -r s e j; do
    [[ -n ${s} ]] || continue
    if ((s < prev_end)); then
      inv_err "${VM_LINE[j]}" "field 'users' of ${VM_NAME[j]}: ${VM_USERS[j]} overlaps ${VM_USERS[prev_i]} of ${VM_NAME[prev_i]} (line ${VM_LINE[prev_i]})"
    fi
    if ((e > G[total-users])); then
      inv_err "${VM_LINE[j]}" "field 'users' of ${VM_NAME[j]}: ${VM_USERS[j]} ends at $((e - 1)), beyond total-users ${G[total-users]} (ids 0..$((G[total-users] - 1)))"
    fi
    if ((e > prev_end)); then prev_end=${e} prev_i=${j}; fi
  done < <(printf '%s\n' "${ranges[@]}" | sort -n -k1,1)
  if [[ ${G[qps]} =~ ^[0-9]+$ && ${G[total-users]} =~ ^[0-9]+$ ]] && ((G[qps] > G[total-users])); then
    inv_err "${set_global[qps]:-0}" "field 'qps': ${G[qps]} is more than total-users ${G[total-users]}"
  fi

  # Derived defaults. A relative ssh-config is relative to the inventory's directory.
  if [[ -n ${G[ssh-config]} ]]; then
    [[ ${G[ssh-config]} == /* ]] || G[ssh-config]=$(cd "$(dirname "${INV_FILE}")" && pwd)/${G[ssh-config]}
    [[ -r ${G[ssh-config]} ]] || inv_err "${set_global[ssh-config]}" "field 'ssh-config': ${G[ssh-config]} is not readable"
  fi
  if [[ -z ${G[chrony-server]} && -n ${G[controller]} ]]; then
    local h=${G[controller]#*://}
    h=${h%%/*}
    G[chrony-server]=${h%%:*}
  fi

  if ((${#INV_ERRORS[@]} > 0)); then
    local e
    for e in "${INV_ERRORS[@]}"; do printf '%s: %s\n' "${HB_PROG}" "${e}" >&2; done
    printf '%s: inventory %s has %d error(s)\n' "${HB_PROG}" "${INV_FILE}" "${#INV_ERRORS[@]}" >&2
    exit 2
  fi
  for ((i = 0; i < VM_COUNT; i++)); do
    [[ -n ${VM_WORKERS[i]} ]] || VM_WORKERS[i]=${G[workers]}
    [[ -n ${VM_CPORT[i]} ]] || VM_CPORT[i]=${G[control-port]}
    # The agent advertises http://CONTROL-HOST:PORT to the controller, which calls it there: with a
    # controller, default to the address ssh reaches the VM at; without one, loopback only.
    if [[ -z ${VM_CHOST[i]} ]]; then
      if [[ -n ${G[control-host]} ]]; then
        VM_CHOST[i]=${G[control-host]}
      elif [[ -n ${G[controller]} && ${VM_TARGET[i]} != - ]]; then
        local host=${VM_TARGET[i]#*@}
        VM_CHOST[i]=${host%:*}
      else
        VM_CHOST[i]=127.0.0.1
      fi
    fi
    [[ -n ${VM_IFACE[i]} ]] || VM_IFACE[i]=${G[iface]}
    [[ -n ${VM_PREFIX[i]} ]] || VM_PREFIX[i]=${G[prefix]}
  done
}

# vm_index NAME : the index of a VM by name (exit 2 if unknown).
vm_index() {
  local i
  for ((i = 0; i < VM_COUNT; i++)); do
    [[ ${VM_NAME[i]} == "$1" ]] && { echo "${i}"; return 0; }
  done
  usage_error "no VM named '$1' in ${INV_FILE}"
}

# agent_argv I : the agent's command line (one argument per line) for VM I, as in the unit's ExecStart.
agent_argv() {
  local i=$1 item
  local -a items
  printf '%s\n' "${G[node]}" "${G[install-dir]}/hongbao.cjs" agent \
    --id "${VM_NAME[i]}" --server "${G[server]}" --users "${VM_USERS[i]}" --total-users "${G[total-users]}"
  IFS=, read -r -a items <<<"${VM_SRC[i]}"
  for item in "${items[@]}"; do printf '%s\n' --source-ip "${item}"; done
  [[ -z ${VM_WORKERS[i]} ]] || printf '%s\n' --workers "${VM_WORKERS[i]}"
  [[ -z ${G[controller]} ]] || printf '%s\n' --controller "${G[controller]}"
  printf '%s\n' --control-host "${VM_CHOST[i]}" --control-port "${VM_CPORT[i]}" --ntp "${G[ntp]}" \
    --qps "${G[qps]}" --mode "${G[mode]}" --rule "${G[rule]}"
}
