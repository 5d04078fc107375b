#!/usr/bin/env bash
# Clones the load VMs from a template with govc (https://github.com/vmware/govmomi/tree/main/govc)
# and gives each a static address by guest customization; prints the inventory lines for them.
# Idempotent: a VM that exists already is left as it is. govc reads GOVC_URL, GOVC_USERNAME,
# GOVC_PASSWORD, GOVC_INSECURE, GOVC_DATACENTER from the environment as usual.
set -euo pipefail
HB_PROG=esxi-clone.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "${HERE}/lib/common.sh"

usage() {
  cat <<'USAGE'
usage: esxi-clone.sh --template VM --count N --first-ip IP --netmask MASK --gateway IP [options]

  --template VM         the powered-off template VM (Debian with Node >= 20, curl, python3 for
                        Ansible, sshd with root's key, VMware tools)
  --count N             VMs to clone [17]
  --prefix NAME         VM names NAME01, NAME02, ... [hb-vm]
  --first-ip IP         address of the first VM; the next ones count up
  --netmask MASK        e.g. 255.255.0.0
  --gateway IP          default gateway
  --dns IP              DNS server (repeat for more)
  --domain NAME         DNS domain [local]
  --folder PATH         inventory folder for the VMs
  --datastore NAME      datastore (govc -ds)
  --pool PATH           resource pool (govc -pool)
  --host PATH           ESXi host (govc -host)
  --network NAME        port group of the VMs' first NIC
  --sources-per-vm K    source IPs per VM in the printed inventory lines [2]
  --source-base IP      first source IP of the first VM; VM i gets BASE + (i-1)*256 .. + K-1
                        [the first address of the next /16's first /24 after --first-ip's /24: 10.10.1.1]
  --users-per-vm U      users per VM in the printed inventory lines [60000]
  --ssh-user NAME       user in the printed ssh targets [root]
  --no-power-on         leave the clones off
  --dry-run             print the govc commands, run nothing (no govc needed)
  -h, --help            this text
USAGE
}

TEMPLATE='' COUNT=17 PREFIX=hb-vm FIRST_IP='' NETMASK='' GATEWAY='' DOMAIN=local FOLDER='' DATASTORE='' POOL=''
ESX_HOST='' NETWORK='' K=2 SOURCE_BASE='' USERS=60000 SSH_USER=root POWER_ON=1
declare -a DNS=()
while (($#)); do
  case $1 in
    --template) need_arg "$@"; TEMPLATE=$2; shift 2 ;;
    --count) need_arg "$@"; COUNT=$2; shift 2 ;;
    --prefix) need_arg "$@"; PREFIX=$2; shift 2 ;;
    --first-ip) need_arg "$@"; FIRST_IP=$2; shift 2 ;;
    --netmask) need_arg "$@"; NETMASK=$2; shift 2 ;;
    --gateway) need_arg "$@"; GATEWAY=$2; shift 2 ;;
    --dns) need_arg "$@"; DNS+=("$2"); shift 2 ;;
    --domain) need_arg "$@"; DOMAIN=$2; shift 2 ;;
    --folder) need_arg "$@"; FOLDER=$2; shift 2 ;;
    --datastore) need_arg "$@"; DATASTORE=$2; shift 2 ;;
    --pool) need_arg "$@"; POOL=$2; shift 2 ;;
    --host) need_arg "$@"; ESX_HOST=$2; shift 2 ;;
    --network) need_arg "$@"; NETWORK=$2; shift 2 ;;
    --sources-per-vm) need_arg "$@"; K=$2; shift 2 ;;
    --source-base) need_arg "$@"; SOURCE_BASE=$2; shift 2 ;;
    --users-per-vm) need_arg "$@"; USERS=$2; shift 2 ;;
    --ssh-user) need_arg "$@"; SSH_USER=$2; shift 2 ;;
    --no-power-on) POWER_ON=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

[[ -n ${TEMPLATE} ]] || usage_error "--template is required"
int_in "${COUNT}" 1 250 || usage_error "--count must be an integer from 1 to 250, got '${COUNT}'"
[[ ${PREFIX} =~ ^[a-z][a-z0-9-]{0,28}$ ]] || usage_error "--prefix must be 1-29 of a-z, 0-9, - starting with a letter, got '${PREFIX}'"
is_ipv4 "${FIRST_IP}" || usage_error "--first-ip must be an IPv4 address, got '${FIRST_IP}'"
is_ipv4 "${NETMASK}" || usage_error "--netmask must be a dotted mask like 255.255.0.0, got '${NETMASK}'"
is_ipv4 "${GATEWAY}" || usage_error "--gateway must be an IPv4 address, got '${GATEWAY}'"
for d in "${DNS[@]}"; do is_ipv4 "${d}" || usage_error "--dns must be an IPv4 address, got '${d}'"; done
int_in "${K}" 1 64 || usage_error "--sources-per-vm must be an integer from 1 to 64, got '${K}'"
int_in "${USERS}" 1 1000000 || usage_error "--users-per-vm must be an integer from 1 to 1000000, got '${USERS}'"
first=$(ip2int "${FIRST_IP}")
((first + COUNT - 1 < (first | 255) + 1)) || usage_error "--first-ip ${FIRST_IP} + ${COUNT} VMs leaves its /24"
if [[ -z ${SOURCE_BASE} ]]; then
  SOURCE_BASE=$(int2ip $(((first & 0xFFFF0000) + 256 + 1)))
fi
is_ipv4 "${SOURCE_BASE}" || usage_error "--source-base must be an IPv4 address, got '${SOURCE_BASE}'"
sbase=$(ip2int "${SOURCE_BASE}")
# The prefix length of the mask, for the inventory's prefix=.
m=$(ip2int "${NETMASK}") plen=0
while ((m & 0x80000000)); do plen=$((plen + 1)) m=$(((m << 1) & 0xFFFFFFFF)); done
((m == 0)) || usage_error "--netmask ${NETMASK} is not a contiguous mask"

if ((!DRY_RUN)); then
  command -v govc >/dev/null 2>&1 || die "govc not found: install it (https://github.com/vmware/govmomi/releases) or use --dry-run"
  [[ -n ${GOVC_URL:-} ]] || die "GOVC_URL is not set (e.g. export GOVC_URL=https://user:pass@vcenter/sdk)"
fi

# exists NAME : the VM exists (dry run: assume not, and print the check).
exists() {
  if ((DRY_RUN)); then
    printf '+ %s   # skip the clone if it prints a path\n' "$(q govc find / -type m -name "$1")"
    return 1
  fi
  [[ -n $(govc find / -type m -name "$1") ]]
}

declare -a lines=()
failed=0
for ((i = 1; i <= COUNT; i++)); do
  name=$(printf '%s%02d' "${PREFIX}" "${i}")
  ip=$(int2ip $((first + i - 1)))
  echo "== ${name} ${ip}"
  if exists "${name}"; then
    echo "unchanged ${name}: exists (not cloned, not customized)"
  else
    clone=(govc vm.clone -vm "${TEMPLATE}" -on=false)
    [[ -z ${FOLDER} ]] || clone+=(-folder "${FOLDER}")
    [[ -z ${DATASTORE} ]] || clone+=(-ds "${DATASTORE}")
    [[ -z ${POOL} ]] || clone+=(-pool "${POOL}")
    [[ -z ${ESX_HOST} ]] || clone+=(-host "${ESX_HOST}")
    [[ -z ${NETWORK} ]] || clone+=(-net "${NETWORK}")
    custom=(govc vm.customize -vm "${name}" -type Linux -name "${name}" -domain "${DOMAIN}" -ip "${ip}" -netmask "${NETMASK}" -gateway "${GATEWAY}")
    for d in "${DNS[@]}"; do custom+=(-dns-server "${d}"); done
    if run "${clone[@]}" "${name}" && run "${custom[@]}"; then
      echo "$( ((DRY_RUN)) && echo would clone || echo cloned) ${name} with ${ip}/${plen}"
    else
      echo "FAILED ${name}" >&2
      failed=$((failed + 1))
      continue
    fi
  fi
  if ((POWER_ON)); then
    run govc vm.power -on=true "${name}" || true
    if ((!DRY_RUN)); then
      got=$(govc vm.ip -wait 5m -v4 "${name}" || true)
      [[ ${got} == *"${ip}"* ]] || { echo "FAILED ${name}: its guest reports address '${got}', want ${ip}" >&2; failed=$((failed + 1)); }
    else
      run govc vm.ip -wait 5m -v4 "${name}"
    fi
  fi
  s0=$((sbase + (i - 1) * 256))
  lines+=("$(printf '%s  %s@%s  %s-%s  %d:%d' "${name}" "${SSH_USER}" "${ip}" "$(int2ip "${s0}")" "$(int2ip $((s0 + K - 1)))" $(((i - 1) * USERS)) "${USERS}")")
done

echo
echo "# inventory lines (prefix=${plen}; total-users=$((COUNT * USERS))):"
printf '%s\n' "${lines[@]}"
((failed == 0)) || die "${failed} VM(s) failed"
