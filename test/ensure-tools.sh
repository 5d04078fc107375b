#!/usr/bin/env bash
# The system tools some tests use: chrony (a real NTP server for the clock test), chromium (the
# dashboard test), shellcheck (the provisioning scripts), iproute2 and curl (the network-namespace
# fleet). It is `npm test`'s pretest.
#
# It installs them (Debian's apt-get, as root) only in CI (CI=true, as .ci/run runs) or when asked
# with --install (`npm run setup:test`). Anywhere else it changes nothing on the machine: it says
# which tools are missing and which tests will be skipped for it, and exits 0. Installing chrony
# removes systemd-timesyncd (Debian: only one time daemon), and the package scripts are kept from
# starting any service, so that machine is left without time synchronisation until it is undone:
# --undo removes what --install installed and puts back what apt-get removed for it (recorded in
# /var/lib/hongbao-fleet/test-tools).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: test/ensure-tools.sh [--install | --undo] [--dry-run]

  (no action)  install the missing tools when CI=true; otherwise only list them and exit 0
  --install    install the missing tools now (root, apt-get): what `npm run setup:test` does
  --undo       purge the packages an earlier --install put here, reinstall what it removed
  --dry-run    print what would be done, change nothing
USAGE
}

ACTION=check DRY_RUN=0
while (($#)); do
  case $1 in
    --install) ACTION=install ;;
    --undo) ACTION=undo ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "ensure-tools: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ ${ACTION} == check && ${CI:-} == true ]]; then ACTION=install; fi

STATE_DIR=${ENSURE_TOOLS_STATE:-/var/lib/hongbao-fleet}
STATE=${STATE_DIR}/test-tools
# Where the tools are looked for (sbin too: chronyd lives there). ENSURE_TOOLS_PATH replaces it (tests).
SEARCH_PATH=${ENSURE_TOOLS_PATH:-${PATH}:/usr/local/sbin:/usr/sbin:/sbin}

# command, Debian package, the tests that need it
TOOLS=(
  "chronyd|chrony|agent-ntp (NTP against a real chronyd)"
  "chromium|chromium|dashboard (headless browser)"
  "shellcheck|shellcheck|provisioning-scripts (shellcheck-clean)"
  "ip|iproute2|provisioning-netns (network namespaces)"
  "curl|curl|provisioning-netns (fleet status and qps)"
  "sshd|openssh-server|provisioning-ssh (an sshd per namespace)"
  "ssh|openssh-client|provisioning-ssh (fleet.sh over ssh)"
  "systemd-analyze|systemd|provisioning-ssh, provisioning-scripts (systemd-analyze verify of the unit)"
  "ansible-playbook|ansible-core|provisioning-ssh (the Ansible playbook)"
)

have() { PATH=${SEARCH_PATH} command -v "$1" >/dev/null 2>&1; }
run() {
  echo "+ $*" >&2
  if ((DRY_RUN == 0)); then "$@"; fi
}

need_root() {
  if ((DRY_RUN == 0)) && [[ ${EUID} -ne 0 ]]; then
    echo "ensure-tools: $1 needs root (apt-get): run it as root, e.g. sudo npm run setup:test" >&2
    exit 1
  fi
}

# Keeps package scripts from starting daemons (chronyd would try to steer the clock) while apt-get runs.
POLICY=/usr/sbin/policy-rc.d
MADE_POLICY=0
block_services() {
  if ((DRY_RUN == 0)) && [[ ! -e ${POLICY} ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${POLICY}"
    chmod +x "${POLICY}"
    MADE_POLICY=1
  fi
}
cleanup() { if ((MADE_POLICY)); then rm -f "${POLICY}"; fi; }
trap cleanup EXIT

if [[ ${ACTION} == undo ]]; then
  if [[ ! -s ${STATE} ]]; then
    echo "ensure-tools: nothing to undo (${STATE} records no install)"
    exit 0
  fi
  need_root --undo
  # shellcheck disable=SC2207 # one package name a word
  installed=($(sed -n 's/^installed //p' "${STATE}")) removed=($(sed -n 's/^removed //p' "${STATE}"))
  export DEBIAN_FRONTEND=noninteractive
  if ((${#installed[@]})); then run apt-get purge -y -qq "${installed[@]}"; fi
  if ((${#removed[@]})); then run apt-get install -y -qq --no-install-recommends "${removed[@]}"; fi
  if ((${#installed[@]})); then run apt-get autoremove -y -qq; fi
  run rm -f "${STATE}"
  echo "ensure-tools: undone: purged ${installed[*]:-nothing}; reinstalled ${removed[*]:-nothing}"
  exit 0
fi

want=() why=()
for entry in "${TOOLS[@]}"; do
  IFS='|' read -r cmd pkg tests <<<"${entry}"
  if ! have "${cmd}"; then
    want+=("${pkg}")
    why+=("  ${pkg} (${cmd}): ${tests}")
  fi
done
if ((${#want[@]} == 0)); then
  exit 0
fi

if [[ ${ACTION} == check ]]; then
  {
    echo "ensure-tools: missing ${want[*]}; these tests will be skipped:"
    printf '%s\n' "${why[@]}"
    echo "  to run them: sudo npm run setup:test (apt-get install ${want[*]}; see the README: what it changes, and --undo)"
  } >&2
  exit 0
fi

need_root "installing ${want[*]}"
echo "ensure-tools: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
# What is new (a package already installed is never purged by --undo) and what apt-get will remove
# to install it (chrony replaces systemd-timesyncd), to put back on --undo.
fresh=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'ok installed' || fresh+=("${pkg}")
done
mapfile -t removes < <(apt-get install -s --no-install-recommends "${want[@]}" 2>/dev/null | sed -n 's/^Remv \([^ ]*\).*/\1/p')
block_services
run apt-get install -y -qq --no-install-recommends "${want[@]}"
if ((DRY_RUN == 0)); then
  mkdir -p "${STATE_DIR}"
  {
    if ((${#fresh[@]})); then printf 'installed %s\n' "${fresh[@]}"; fi
    if ((${#removes[@]})); then printf 'removed %s\n' "${removes[@]}"; fi
  } >>"${STATE}"
else
  echo "+ record in ${STATE}: installed ${fresh[*]:-nothing}; removed ${removes[*]:-nothing}" >&2
fi
if ((${#removes[@]})); then
  echo "ensure-tools: apt-get removed ${removes[*]} for them; test/ensure-tools.sh --undo puts it back" >&2
fi
