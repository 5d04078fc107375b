#!/usr/bin/env bash
# The whole fleet on this machine (npm run fleet:local): N network namespaces as VMs, a stub and a
# controller (also the agents' SNTP source) on the bridge, fleet.sh tune/deploy/start over the
# netns transport (or, with --ssh, over ssh to an sshd in each namespace), a QPS change through the
# controller applied by every agent in the same second, then teardown (always, also on failure or
# Ctrl-C).
set -euo pipefail
HB_PROG=fleet-local.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "${HERE}/lib/common.sh"

usage() {
  cat <<'USAGE'
usage: fleet-local.sh [--count N] [--ips K] [--users-per-vm U] [--qps Q] [--qps-to Q2]
                      [--hold SECONDS] [--run-id ID] [--no-controller] [--ssh] [--dist FILE]
                      [--keep] [--dry-run]

  --count N         namespaces ("VMs") [3]
  --ips K           source IPs per namespace [2]
  --users-per-vm U  users (connections) per namespace [200]
  --qps Q           fleet QPS to start with [100]
  --qps-to Q2       fleet QPS after the change [300]
  --hold SECONDS    seconds to run at Q2 before the teardown [3]
  --run-id ID       names of this run (1-6 of a-z, 0-9) [random]
  --no-controller   no controller: fleet.sh sends {qps, at} to the agents itself (also the
                    fallback when this build has no working `hongbao controller`)
  --ssh             reach the namespaces as real VMs: an sshd in each (netns.sh up --sshd) and
                    fleet.sh's default ssh transport (needs openssh-server)
  --dist FILE       the bundle to run (stub, controller) and deploy (agents) [dist/hongbao.cjs]
  --keep            leave everything up (tear down later: netns.sh down --run-id ID, kill the stub)
  --dry-run         print the plan, change nothing
Needs root (network namespaces) and dist/hongbao.cjs (npm run build). Exit 77 when network
namespaces are not permitted here.
USAGE
}

COUNT=3 IPS=2 USERS=200 QPS=100 QPS_TO=300 HOLD=3 KEEP=0 CONTROLLER=1 SSH=0
RUN=l$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)
CLI=$(cd "${HERE}/.." && pwd)/dist/hongbao.cjs
while (($#)); do
  case $1 in
    --count) need_arg "$@"; COUNT=$2; shift 2 ;;
    --ips) need_arg "$@"; IPS=$2; shift 2 ;;
    --users-per-vm) need_arg "$@"; USERS=$2; shift 2 ;;
    --qps) need_arg "$@"; QPS=$2; shift 2 ;;
    --qps-to) need_arg "$@"; QPS_TO=$2; shift 2 ;;
    --hold) need_arg "$@"; HOLD=$2; shift 2 ;;
    --run-id) need_arg "$@"; RUN=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-controller) CONTROLLER=0; shift ;;
    --ssh) SSH=1; shift ;;
    --dist) need_arg "$@"; CLI=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done
int_in "${COUNT}" 1 15 || usage_error "--count must be an integer from 1 to 15, got '${COUNT}'"
int_in "${USERS}" 1 20000 || usage_error "--users-per-vm must be an integer from 1 to 20000, got '${USERS}'"
int_in "${QPS}" 0 $((COUNT * USERS)) || usage_error "--qps must be from 0 to $((COUNT * USERS)), got '${QPS}'"
int_in "${QPS_TO}" 0 $((COUNT * USERS)) || usage_error "--qps-to must be from 0 to $((COUNT * USERS)), got '${QPS_TO}'"
int_in "${HOLD}" 0 3600 || usage_error "--hold must be an integer from 0 to 3600, got '${HOLD}'"
[[ ${RUN} =~ ^[a-z0-9]{1,6}$ ]] || usage_error "--run-id must be 1-6 of a-z, 0-9, got '${RUN}'"

STATE=/tmp/hongbao-netns/${RUN}
INV=${STATE}/inventory
FLEET=("${HERE}/fleet.sh" --transport netns --run-id "${RUN}" --inventory "${INV}" --dist "${CLI}")
declare -a UP=("${HERE}/netns.sh" up --run-id "${RUN}" --count "${COUNT}" --ips "${IPS}")
if ((SSH)); then
  FLEET=("${HERE}/fleet.sh" --inventory "${INV}" --dist "${CLI}")
  UP+=(--sshd)
fi

if ((DRY_RUN)); then
  cat <<PLAN
+ $(q "${UP[@]}")
+ $(q node "${CLI}" stub --host BRIDGE_IP --port 0 --http-port 0 --iface "hb${RUN}br")   # HONGBAO_TOKEN: a fresh one, for the stub, the controller and the agents
+ $(q node "${CLI}" controller --host BRIDGE_IP --port 0 --stub http://BRIDGE_IP:STUB_HTTP_PORT --results "${STATE}/results" --ntp-serve 0)
+ $(q "${UP[@]}" --inventory "${INV}" --server-port STUB_PORT --users-per-vm "${USERS}" --qps "${QPS}" --controller http://BRIDGE_IP:CONTROLLER_PORT --ntp BRIDGE_IP:SNTP_PORT)
+ $(q "${FLEET[@]}" tune)
+ $(q "${FLEET[@]}" deploy)
+ $(q "${FLEET[@]}" start)
+ (wait until the stub holds $((COUNT * USERS)) connections and the controller knows ${COUNT} agents)
+ $(q "${FLEET[@]}" status)
+ $(q "${FLEET[@]}" qps "${QPS_TO}")
+ (the stub's shakes per second around the change)
+ $(q "${FLEET[@]}" stop)
+ kill CONTROLLER_PID STUB_PID
+ $(q "${HERE}/netns.sh" down --run-id "${RUN}")
PLAN
  exit 0
fi

"${HERE}/netns.sh" probe >/dev/null || exit $?
[[ -r ${CLI} ]] || die "${CLI} missing: run npm run build"
node "${CLI}" agent --help >/dev/null 2>&1 || die "this build has no working 'hongbao agent' (node ${CLI} agent --help fails)"

STUB_PID='' CONTROLLER_PID=''
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if ((KEEP)); then
    log "kept run ${RUN} up: stub pid ${STUB_PID:-none}, controller pid ${CONTROLLER_PID:-none}; tear down with: ${FLEET[*]} stop; kill ${CONTROLLER_PID} ${STUB_PID}; ${HERE}/netns.sh down --run-id ${RUN}"
    exit "${rc}"
  fi
  echo "== teardown"
  [[ ! -f ${INV} ]] || "${FLEET[@]}" stop || true
  local pid
  for pid in ${CONTROLLER_PID} ${STUB_PID}; do
    if kill -0 "${pid}" 2>/dev/null; then
      kill -TERM "${pid}" 2>/dev/null || true
      wait "${pid}" 2>/dev/null || true
    fi
  done
  "${HERE}/netns.sh" down --run-id "${RUN}" || rc=1
  exit "${rc}"
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "== netns.sh up: run ${RUN}, ${COUNT} namespaces x ${IPS} source IPs$( ((SSH)) && echo ', an sshd in each')"
layout=$("${UP[@]}" 2>/dev/null)
BRIDGE_IP=$(sed -n 's/^bridge_ip=//p' <<<"${layout}")
echo "${layout}"

# One token for the stub, the controller and the agents: none of them listens on loopback here.
HONGBAO_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export HONGBAO_TOKEN
echo "== stub on ${BRIDGE_IP}"
mkdir -p "${STATE}"
node "${CLI}" stub --host "${BRIDGE_IP}" --port 0 --http-port 0 --iface "hb${RUN}br" >"${STATE}/stub.out" 2>"${STATE}/stub.err" &
STUB_PID=$!
for ((n = 0; n < 100; n++)); do
  grep -q '"listening"' "${STATE}/stub.out" 2>/dev/null && break
  kill -0 "${STUB_PID}" 2>/dev/null || die "the stub exited: $(tail -n 3 "${STATE}/stub.err")"
  sleep 0.1
done
STUB_PORT=$(grep -o '"port":[0-9]*' "${STATE}/stub.out" | head -n 1 | cut -d: -f2)
HTTP_PORT=$(grep -o '"httpPort":[0-9]*' "${STATE}/stub.out" | head -n 1 | cut -d: -f2)
[[ -n ${STUB_PORT} && -n ${HTTP_PORT} ]] || die "the stub did not report its ports"
STATS=http://${BRIDGE_IP}:${HTTP_PORT}/stats
echo "stub pid ${STUB_PID}: ws://${BRIDGE_IP}:${STUB_PORT}, ${STATS}"

# wait_line FILE PID WHAT : waits for the JSON "listening" line of a process started here.
wait_line() {
  local n
  for ((n = 0; n < 150; n++)); do
    grep -q '"listening"' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited: $(tail -n 3 "${1%.out}.err")"
    sleep 0.1
  done
  die "$3 did not report listening within 15 s"
}

declare -a CTL_ARGS=()
if ((CONTROLLER)) && ! node "${CLI}" controller --help >/dev/null 2>&1; then
  echo "controller: this build has no working 'hongbao controller'; QPS changes go to the agents directly"
  CONTROLLER=0
fi
if ((CONTROLLER)); then
  node "${CLI}" controller --host "${BRIDGE_IP}" --port 0 --stub "http://${BRIDGE_IP}:${HTTP_PORT}" \
    --results "${STATE}/results" --ntp-serve 0 >"${STATE}/controller.out" 2>"${STATE}/controller.err" &
  CONTROLLER_PID=$!
  wait_line "${STATE}/controller.out" "${CONTROLLER_PID}" "the controller"
  CTL_PORT=$(grep -o '"port":[0-9]*' "${STATE}/controller.out" | head -n 1 | cut -d: -f2)
  NTP_PORT=$(grep -o '"ntpPort":[0-9]*' "${STATE}/controller.out" | head -n 1 | cut -d: -f2)
  CTL_URL=http://${BRIDGE_IP}:${CTL_PORT}
  CTL_ARGS=(--controller "${CTL_URL}")
  [[ -z ${NTP_PORT} ]] || CTL_ARGS+=(--ntp "${BRIDGE_IP}:${NTP_PORT}")
  echo "controller pid ${CONTROLLER_PID}: ${CTL_URL}, SNTP on ${BRIDGE_IP}:${NTP_PORT:-none}, results in ${STATE}/results"
fi

"${UP[@]}" --inventory "${INV}" \
  --server-port "${STUB_PORT}" --users-per-vm "${USERS}" --qps "${QPS}" "${CTL_ARGS[@]}" >/dev/null 2>&1
for step in tune deploy start; do
  echo "== fleet.sh ${step}"
  "${FLEET[@]}" "${step}"
done

want=$((COUNT * USERS))
echo "== waiting for ${want} connections"
for ((n = 0; n < 600; n++)); do
  have=$(curl -fsS -m 2 "${STATS}" | grep -o '"connections":[0-9]*' | head -n 1 | cut -d: -f2 || true)
  [[ ${have:-0} -ge ${want} ]] && break
  sleep 0.1
done
[[ ${have:-0} -ge ${want} ]] || die "the stub holds ${have:-0} connections, want ${want}"
echo "stub: ${have} connections; per source address:"
ss -tnH state established "( sport = :${STUB_PORT} and src ${BRIDGE_IP} )" | awk '{n = split($4, a, ":"); print a[1]}' | sort -V | uniq -c

if ((CONTROLLER)); then
  for ((n = 0; n < 100; n++)); do
    agents=$(curl -fsS -m 2 "${CTL_URL}/agents" | grep -o '"controlUrl"' | wc -l || true)
    ((agents >= COUNT)) && break
    sleep 0.2
  done
  echo "controller: ${agents} agents registered"
  ((agents >= COUNT)) || die "the controller knows ${agents} agents, want ${COUNT}"
fi

echo "== fleet.sh status"
"${FLEET[@]}" status

echo "== fleet.sh qps ${QPS_TO}"
if ((CONTROLLER)); then
  out=$("${FLEET[@]}" qps "${QPS_TO}") || { echo "${out}"; die "the QPS change failed"; }
else
  out=$("${FLEET[@]}" qps "${QPS_TO}" --at +2) || { echo "${out}"; die "the QPS change failed"; }
fi
echo "${out}"
at=$(sed -n 's/^qps [0-9]* at \([0-9]*\) .*/\1/p' <<<"${out}" | head -n 1)
sleep $((2 + HOLD))
echo "stub shakes per second (the change is due in second ${at}):"
curl -fsS -m 2 "${STATS}?since=$((at - 3))" | grep -o '"second":[0-9]*,"shakes":[0-9]*' | sed 's/"second":\([0-9]*\),"shakes":\([0-9]*\)/  \1  \2/' |
  while read -r s k; do
    mark=''
    ((s == at)) && mark="  <- qps ${QPS_TO} from here"
    echo "  ${s}  ${k}${mark}"
  done
