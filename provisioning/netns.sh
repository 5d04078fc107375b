#!/usr/bin/env bash
# A fleet of "VMs" on this machine: one network namespace per VM, each with its own addresses from
# 198.18.0.0/15 (the benchmarking range), its own sysctls and processes, on a bridge that the stub
# and the controller listen on. fleet.sh --transport netns --run-id ID runs its actions in them.
#
# Layout of a run (slot S = the run's /20 of 198.18.0.0/15, 0..31, picked free at `up`):
#   bridge hb<ID>br   BASE+1/20            (BASE = 198.18.0.0 + S*4096; slot 0: 198.18.0.1)
#   namespace hb-<ID>-vm<N>, N = 1..15: eth0 (veth hb<ID>v<N> on the bridge) BASE+N*256+1/20, lo up;
#                                       source IPs BASE+N*256+10 .. (aliased by host-tune.sh)
# Only the connected /20 is routed: nothing leaves 198.18.0.0/15 and 127.0.0.0/8. The host's own
# routes, firewall and interfaces are not touched. State: /tmp/hongbao-netns/<ID>/.
# With --sshd each namespace runs its own sshd (Debian's openssh-server) on its address, with a host
# key and a client key made for the run, so that fleet.sh and the Ansible playbook reach the "VMs"
# over ssh as they reach real ones. Each VM's files live under /tmp/hongbao-netns/<ID>/vmN (fsroot).
set -euo pipefail
HB_PROG=netns.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "${HERE}/lib/common.sh"

usage() {
  cat <<'USAGE'
usage: netns.sh probe
       netns.sh up   --run-id ID --count N [--ips K] [--sshd] [--inventory FILE --server-port P
                     [--users-per-vm U] [--qps Q] [--mode M] [--rule R] [--workers W]
                     [--controller URL] [--ntp HOST:PORT]]
       netns.sh down --run-id ID
       netns.sh info --run-id ID
       netns.sh list

  probe           exit 0 when network namespaces can be made here, 77 (with the reason) when not
  up              create (or complete: idempotent) run ID's bridge and N namespaces (1..15); print
                  the layout as key=value lines; with --inventory, write a fleet.sh inventory whose
                  VM vmN is namespace hb-ID-vmN with K source IPs [2] and U users each [100];
                  with --controller, each agent's control endpoint listens on its namespace's
                  address (so the controller can reach it; needs HONGBAO_TOKEN at deploy)
  --sshd          also start an sshd in each namespace on its address (port 22), root login with
                  a key made for the run: STATE/ssh/config is the ssh_config to reach them (ssh -F);
                  the inventory then has ssh targets root@ADDRESS and ssh-config= (fleet.sh's
                  default ssh transport and the Ansible playbook use it)
  down            stop every process in run ID's namespaces, delete them, their links, the bridge
                  and /tmp/hongbao-netns/ID; only what run ID created
  info            the layout of a run that is up
  list            runs that are up
  --run-id ID     1-6 of a-z, 0-9: prefixes every name of the run
  --dry-run       print the commands, change nothing
USAGE
}

NETNS_BASE=/tmp/hongbao-netns
SSHD=0 RUN='' COUNT='' IPS=2 INVENTORY='' SERVER_PORT='' USERS=100 QPS=0 MODE=spread RULE=window WORKERS='' CONTROLLER='' NTP=off
ACTION=${1:-}
[[ -n ${ACTION} ]] || usage_error "no action (probe, up, down, info, list)"
shift
case ${ACTION} in -h | --help) usage; exit 0 ;; probe | up | down | info | list) ;; *) usage_error "unknown action '${ACTION}'" ;; esac
while (($#)); do
  case $1 in
    --run-id) need_arg "$@"; RUN=$2; shift 2 ;;
    --count) need_arg "$@"; COUNT=$2; shift 2 ;;
    --ips) need_arg "$@"; IPS=$2; shift 2 ;;
    --inventory) need_arg "$@"; INVENTORY=$2; shift 2 ;;
    --server-port) need_arg "$@"; SERVER_PORT=$2; shift 2 ;;
    --users-per-vm) need_arg "$@"; USERS=$2; shift 2 ;;
    --qps) need_arg "$@"; QPS=$2; shift 2 ;;
    --mode) need_arg "$@"; MODE=$2; shift 2 ;;
    --rule) need_arg "$@"; RULE=$2; shift 2 ;;
    --workers) need_arg "$@"; WORKERS=$2; shift 2 ;;
    --controller) need_arg "$@"; CONTROLLER=$2; shift 2 ;;
    --ntp) need_arg "$@"; NTP=$2; shift 2 ;;
    --sshd) SSHD=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

if [[ ${ACTION} == up || ${ACTION} == down || ${ACTION} == info ]]; then
  [[ ${RUN} =~ ^[a-z0-9]{1,6}$ ]] || usage_error "--run-id must be 1-6 of a-z, 0-9, got '${RUN}'"
fi
if [[ ${ACTION} == up ]]; then
  int_in "${COUNT}" 1 15 || usage_error "--count must be an integer from 1 to 15, got '${COUNT}'"
  int_in "${IPS}" 1 200 || usage_error "--ips must be an integer from 1 to 200, got '${IPS}'"
  if [[ -n ${INVENTORY} ]]; then
    int_in "${SERVER_PORT}" 1 65535 || usage_error "--inventory needs --server-port from 1 to 65535, got '${SERVER_PORT}'"
    int_in "${USERS}" 1 1000000 || usage_error "--users-per-vm must be an integer from 1 to 1000000, got '${USERS}'"
    int_in "${QPS}" 0 $((USERS * COUNT)) || usage_error "--qps must be an integer from 0 to $((USERS * COUNT)), got '${QPS}'"
  fi
fi
if ((SSHD)) && [[ ! -x /usr/sbin/sshd ]]; then
  echo "${HB_PROG}: --sshd needs /usr/sbin/sshd (apt-get install openssh-server)" >&2
  exit 77
fi
if ((!DRY_RUN)) && [[ ${ACTION} != list && ${ACTION} != info ]] && ((EUID != 0)); then
  echo "${HB_PROG}: network namespaces need root (running as uid ${EUID})" >&2
  exit 77
fi

STATE=${NETNS_BASE}/${RUN}
BR=hb${RUN}br
RANGE_LO=$(ip2int 198.18.0.0)

ns_of() { echo "hb-${RUN}-vm$1"; }
exists_ns() { [[ -e /run/netns/$1 ]]; }
exists_link() { ip link show dev "$1" >/dev/null 2>&1; }

# layout SLOT : sets BASE (int), BRIDGE_IP.
layout() {
  BASE=$((RANGE_LO + $1 * 4096))
  BRIDGE_IP=$(int2ip $((BASE + 1)))
}

probe() {
  local name out
  name=hbprobe$$
  if ! out=$(ip netns add "${name}" 2>&1); then
    echo "${HB_PROG}: network namespaces are not permitted here (ip netns add: ${out})" >&2
    exit 77
  fi
  ip netns del "${name}"
  if ! out=$(ip link add "${name}" type bridge 2>&1); then
    echo "${HB_PROG}: bridges are not permitted here (ip link add type bridge: ${out})" >&2
    exit 77
  fi
  ip link del "${name}"
  echo "network namespaces: permitted"
}

# pick_slot : the run's slot: the one it has, else the lowest /20 no run and no host address uses.
pick_slot() {
  if [[ -s ${STATE}/slot ]]; then
    cat "${STATE}/slot"
    return
  fi
  local -A used=()
  local f s ip n
  for f in "${NETNS_BASE}"/*/slot; do
    [[ -s ${f} ]] || continue
    s=$(<"${f}")
    used[${s}]=1
  done
  while read -r ip; do
    n=$(ip2int "${ip}")
    ((n >= RANGE_LO && n < RANGE_LO + 131072)) && used[$(((n - RANGE_LO) / 4096))]=1
  done < <(ip -4 -o addr show | awk '{split($4, a, "/"); print a[1]}')
  for ((s = 0; s < 32; s++)); do
    [[ -n ${used[${s}]:-} ]] || { echo "${s}"; return; }
  done
  die "all 32 /20 slots of 198.18.0.0/15 are in use; tear runs down (netns.sh list)"
}

# sshd_up N NS ADDRESS : namespace NS runs sshd on ADDRESS:22 (idempotent: a live one is kept).
# Keys and configs in STATE/ssh: host_ed25519 (one host key for the run), id_ed25519 (the client
# key, root's only authorized key), sshd-vmN.conf/.pid/.log, known_hosts, config (the client's).
sshd_up() {
  local n=$1 ns=$2 addr=$3 dir=${STATE}/ssh pid
  local conf=${dir}/sshd-vm${n}.conf pidf=${dir}/sshd-vm${n}.pid
  write_file "${conf}" 0600 "# sshd of ${ns} (netns.sh up --sshd): the test bed's \"VM\" vm${n}
ListenAddress ${addr}:22
HostKey ${dir}/host_ed25519
PidFile ${pidf}
AuthorizedKeysFile ${dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# No PAM: no session limits or environment from this machine's PAM configuration.
UsePAM no
# A VM's root has a short ~/.bashrc; this machine's may not (bash sources it for every ssh command
# when SHLVL < 2): keep it out of the commands fleet.sh and Ansible send.
SetEnv SHLVL=1
# The keys live in /tmp (world-writable): no ownership checks of the path.
StrictModes no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server" >&2
  if ((!DRY_RUN)) && [[ -s ${pidf} ]] && pid=$(<"${pidf}") && ip netns pids "${ns}" | grep -qx "${pid}"; then
    echo "unchanged sshd of ${ns} (pid ${pid})" >&2
    return 0
  fi
  run ip netns exec "${ns}" /usr/sbin/sshd -f "${conf}" -E "${dir}/sshd-vm${n}.log"
  ((DRY_RUN)) && return 0
  local k
  for ((k = 0; k < 50; k++)); do
    (exec 3<>"/dev/tcp/${addr}/22") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/${addr}/22") 2>/dev/null || die "sshd of ${ns} does not answer on ${addr}:22: $(tail -n 3 "${dir}/sshd-vm${n}.log" 2>/dev/null)"
  echo "started sshd of ${ns} on ${addr}:22 (pid $(<"${pidf}"))" >&2
}

# ssh_keys : the run's host and client keys (made once).
ssh_keys() {
  local dir=${STATE}/ssh
  run mkdir -p "${dir}"
  run chmod 0700 "${dir}"
  [[ -f ${dir}/host_ed25519 ]] || run ssh-keygen -q -t ed25519 -N '' -C "hongbao test bed ${RUN} host" -f "${dir}/host_ed25519"
  [[ -f ${dir}/id_ed25519 ]] || run ssh-keygen -q -t ed25519 -N '' -C "hongbao test bed ${RUN} client" -f "${dir}/id_ed25519"
  ((DRY_RUN)) || write_file "${dir}/authorized_keys" 0600 "$(<"${dir}/id_ed25519.pub")" >&2
  # /run/sshd: sshd's privilege-separation directory (Debian's package makes it when it starts sshd).
  [[ -d /run/sshd ]] || run install -d -m 0755 /run/sshd
}

# ssh_client ADDRESS... : the client's config and known_hosts (the run's host key at each address).
ssh_client() {
  local dir=${STATE}/ssh a known=''
  ((DRY_RUN)) && return 0
  for a in "$@"; do known+="${a} $(cut -d' ' -f1,2 "${dir}/host_ed25519.pub")"$'\n'; done
  write_file "${dir}/known_hosts" 0644 "${known%$'\n'}" >&2
  write_file "${dir}/config" 0644 "# ssh_config of test bed ${RUN} (netns.sh up --sshd): ssh -F ${dir}/config root@ADDRESS
Host *
  User root
  IdentityFile ${dir}/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile ${dir}/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
  # One connection per VM, shared by the commands of a run (closed 30 s after the last one, or
  # when netns.sh down stops the VM's sshd).
  ControlMaster auto
  ControlPath ${dir}/mux-%C
  ControlPersist 30" >&2
}

up() {
  local slot n ns veth peer primary first last
  mkdir -p "${NETNS_BASE}"
  exec 9>"${NETNS_BASE}/.lock"
  flock 9
  slot=$(pick_slot)
  layout "${slot}"
  if ((!DRY_RUN)); then
    mkdir -p "${STATE}"
    echo "${slot}" >"${STATE}/slot"
  fi
  flock -u 9
  if exists_link "${BR}"; then
    echo "unchanged bridge ${BR}" >&2
  else
    run ip link add "${BR}" type bridge
    echo "created bridge ${BR}" >&2
  fi
  if ((DRY_RUN)) || ! ip -4 -o addr show dev "${BR}" | grep -q " inet ${BRIDGE_IP}/"; then
    run ip addr add "${BRIDGE_IP}/20" dev "${BR}"
  fi
  run ip link set "${BR}" up
  echo "run=${RUN}"
  echo "slot=${slot}"
  echo "bridge=${BR}"
  echo "bridge_ip=${BRIDGE_IP}"
  echo "prefix=20"
  echo "state=${STATE}"
  ((!SSHD)) || ssh_keys
  local -a addrs=()
  for ((n = 1; n <= COUNT; n++)); do
    ns=$(ns_of "${n}") veth=hb${RUN}v${n} peer=hb${RUN}p${n}
    primary=$(int2ip $((BASE + n * 256 + 1)))
    first=$(int2ip $((BASE + n * 256 + 10)))
    last=$(int2ip $((BASE + n * 256 + 9 + IPS)))
    if exists_ns "${ns}"; then
      echo "unchanged namespace ${ns}" >&2
    else
      run ip netns add "${ns}"
      echo "created namespace ${ns}" >&2
    fi
    if ! exists_link "${veth}"; then
      run ip link add "${veth}" type veth peer name "${peer}" netns "${ns}"
      run ip -n "${ns}" link set "${peer}" name eth0
    fi
    run ip link set "${veth}" master "${BR}" up
    run ip -n "${ns}" link set lo up
    run ip -n "${ns}" link set eth0 up
    if ((DRY_RUN)) || ! ip -n "${ns}" -4 -o addr show dev eth0 | grep -q " inet ${primary}/"; then
      run ip -n "${ns}" addr add "${primary}/20" dev eth0
    fi
    ((!SSHD)) || sshd_up "${n}" "${ns}" "${primary}"
    addrs+=("${primary}")
    echo "ns=vm${n} ${ns} ${primary} ${first}-${last}"
  done
  if ((SSHD)); then
    ssh_client "${addrs[@]}"
    echo "ssh_config=${STATE}/ssh/config"
  fi
  if [[ -n ${INVENTORY} ]]; then
    local content
    local how="fleet.sh --transport netns --run-id ${RUN}" target=-
    ((!SSHD)) || how="fleet.sh (ssh), or the Ansible playbook with HONGBAO_INVENTORY=${INVENTORY}"
    content="# fleet of run ${RUN} on this machine (netns.sh up): ${how}
# The \"VMs\" share this machine: each keeps its files under its fsroot, runs the agent as user
# daemon (the test bed creates no user) with at most 20000 open files (the hard limit here).
server=ws://${BRIDGE_IP}:${SERVER_PORT}
total-users=$((USERS * COUNT))
qps=${QPS}
mode=${MODE}
rule=${RULE}
iface=eth0
prefix=20
ntp=${NTP}
user=daemon
nofile=20000
node=$(command -v node || echo /usr/bin/node)"
    ((!SSHD)) || content+=$'\n'"ssh-config=${STATE}/ssh/config"$'\n'"chrony-server=${BRIDGE_IP}"
    [[ -z ${WORKERS} ]] || content+=$'\n'"workers=${WORKERS}"
    if [[ -n ${CONTROLLER} ]]; then
      content+=$'\n'"controller=${CONTROLLER}"
    else
      content+=$'\n'"control-host=127.0.0.1"
    fi
    local extra=''
    for ((n = 1; n <= COUNT; n++)); do
      [[ -z ${CONTROLLER} ]] || extra=" control-host=$(int2ip $((BASE + n * 256 + 1)))"
      ((!SSHD)) || target=root@$(int2ip $((BASE + n * 256 + 1)))
      content+=$'\n'"vm${n} ${target} $(int2ip $((BASE + n * 256 + 10)))-$(int2ip $((BASE + n * 256 + 9 + IPS))) $(((n - 1) * USERS)):${USERS} fsroot=${STATE}/vm${n}${extra}"
    done
    write_file "${INVENTORY}" 0644 "${content}" >&2
  fi
}

down() {
  local ns pids n left=0 addr
  local -a nss=()
  # The ssh connections this machine keeps open to the run's sshds (ControlMaster): closed first.
  if [[ -f ${STATE}/ssh/known_hosts ]]; then
    while read -r addr _; do
      [[ -n ${addr} ]] || continue
      run ssh -F "${STATE}/ssh/config" -O exit "root@${addr}" 2>/dev/null || true
    done <"${STATE}/ssh/known_hosts"
  fi
  mapfile -t nss < <(ip netns list | awk -v p="hb-${RUN}-" 'index($1, p) == 1 {print $1}')
  for ns in "${nss[@]}"; do
    pids=$(ip netns pids "${ns}" | tr '\n' ' ')
    if [[ -n ${pids// /} ]]; then
      # shellcheck disable=SC2086 # a list of PIDs
      run kill -TERM ${pids} 2>/dev/null || true
      for ((n = 0; n < 50 && !DRY_RUN; n++)); do
        [[ -z $(ip netns pids "${ns}") ]] && break
        sleep 0.1
      done
      pids=$(ip netns pids "${ns}" | tr '\n' ' ')
      if [[ -n ${pids// /} ]] && ((!DRY_RUN)); then
        # shellcheck disable=SC2086 # a list of PIDs
        kill -KILL ${pids} 2>/dev/null || true
        sleep 0.2
      fi
      echo "stopped processes of ${ns}" >&2
    fi
    run ip netns del "${ns}"
    echo "deleted namespace ${ns}" >&2
  done
  local link
  while read -r link; do
    [[ -n ${link} ]] || continue
    # A veth goes away with its namespace, a moment later: gone by itself is fine.
    if run ip link del "${link}" 2>/dev/null || ! exists_link "${link}"; then
      echo "deleted link ${link}" >&2
    else
      echo "${HB_PROG}: could not delete link ${link}" >&2
    fi
  done < <(ip -o link show | awk -F': ' -v re="^hb${RUN}(br|v[0-9]+)$" '{sub(/@.*/, "", $2); if ($2 ~ re) print $2}' | sort -r)
  run rm -rf "${STATE}"
  # Anything left behind is an error, so that a test notices.
  ((DRY_RUN)) && return 0
  for ((n = 0; n < 20; n++)); do
    ip -o link show | grep -Eq ": hb${RUN}(br|v[0-9]+)[@:]" || break
    sleep 0.1
  done
  mapfile -t nss < <(ip netns list | awk -v p="hb-${RUN}-" 'index($1, p) == 1 {print $1}')
  ((${#nss[@]} == 0)) || { echo "${HB_PROG}: still there: namespaces ${nss[*]}" >&2; left=1; }
  if ip -o link show | grep -Eq ": hb${RUN}(br|v[0-9]+)[@:]"; then
    echo "${HB_PROG}: still there: links $(ip -o link show | grep -Eo ": hb${RUN}(br|v[0-9]+)[@:]" | tr -d ':@' | tr '\n' ' ')" >&2
    left=1
  fi
  ((left == 0)) || exit 1
  echo "run ${RUN} is down"
}

info() {
  [[ -s ${STATE}/slot ]] || die "run ${RUN} is not up (no ${STATE}/slot)"
  layout "$(<"${STATE}/slot")"
  echo "run=${RUN}"
  echo "slot=$(<"${STATE}/slot")"
  echo "bridge=${BR}"
  echo "bridge_ip=${BRIDGE_IP}"
  local ns
  while read -r ns; do
    [[ -n ${ns} ]] && echo "ns=${ns#hb-"${RUN}"-} ${ns}"
  done < <(ip netns list | awk -v p="hb-${RUN}-" 'index($1, p) == 1 {print $1}' | sort -V)
}

list() {
  local d
  for d in "${NETNS_BASE}"/*/; do
    [[ -s ${d}slot ]] || continue
    d=${d%/}
    echo "${d##*/} slot $(<"${d}/slot") namespaces $(ip netns list | awk -v p="hb-${d##*/}-" 'index($1, p) == 1' | wc -l)"
  done
}

case ${ACTION} in
  probe) probe ;;
  up) up ;;
  down) down ;;
  info) info ;;
  list) list ;;
esac
