#!/usr/bin/env bash
# Prepares one load-agent host (a VM, or a network namespace standing in for one) for ~60,000
# connections: kernel settings, open-file limits, source-IP aliases and chrony. Idempotent: a second
# run reports every item "unchanged". Needs root unless --root or --dry-run.
set -euo pipefail
HB_PROG=host-tune.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "${HERE}/lib/common.sh"

usage() {
  cat <<'USAGE'
usage: host-tune.sh [options]

Tunes this host for the hongbao agent. Every item prints "changed", "unchanged" or "skipped (why)".

  --source-ips LIST     source addresses to alias on --iface: IP or A-B, comma-separated
  --iface DEV|auto      interface for the aliases (auto: the default route's, else the only
                        non-loopback interface that is up) [auto]
  --prefix N            prefix length of the aliases [24]
  --chrony-server HOST  make chrony a client of HOST (the controller host)
  --chrony-serve CIDR   make chrony serve time to CIDR (run this on the controller host)
  --user NAME           user the agent runs as, for limits.d [hongbao]
  --nofile N            open-file limit for the agent (limits.d, systemd) [1048576]
  --netns               namespace mode (a test-bed "VM"): change only per-namespace settings live
                        (sysctls, aliases); report host-wide ones (fs.*, limits, chrony) as skipped
  --root DIR            write the files under DIR and change nothing live (review, tests); with
                        --netns: files under DIR, per-namespace settings live, no service touched
  --dry-run             print what would change, change nothing
  -h, --help            this text

Files, rendered from the templates in files/ next to this script (the Ansible playbook uses the
same): /etc/sysctl.d/90-hongbao.conf, /etc/security/limits.d/90-hongbao.conf,
/etc/systemd/system.conf.d/90-hongbao.conf, /etc/systemd/system/hongbao-ip-aliases.service,
/etc/chrony/conf.d/hongbao-client.conf (and `makestep` commented out in /etc/chrony/chrony.conf, whose
own would override it), /etc/chrony/conf.d/hongbao-server.conf.
USAGE
}

SOURCE_IPS='' IFACE=auto PREFIX=24 CHRONY_SERVER='' CHRONY_SERVE='' AGENT_USER=hongbao NOFILE=1048576 NETNS=0 ROOT=''
while (($#)); do
  case $1 in
    --source-ips) need_arg "$@"; SOURCE_IPS=$2; shift 2 ;;
    --iface) need_arg "$@"; IFACE=$2; shift 2 ;;
    --prefix) need_arg "$@"; PREFIX=$2; shift 2 ;;
    --chrony-server) need_arg "$@"; CHRONY_SERVER=$2; shift 2 ;;
    --chrony-serve) need_arg "$@"; CHRONY_SERVE=$2; shift 2 ;;
    --user) need_arg "$@"; AGENT_USER=$2; shift 2 ;;
    --nofile) need_arg "$@"; NOFILE=$2; shift 2 ;;
    --netns) NETNS=1; shift ;;
    --root) need_arg "$@"; ROOT=${2%/}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

int_in "${PREFIX}" 8 32 || usage_error "--prefix must be an integer from 8 to 32, got '${PREFIX}'"
int_in "${NOFILE}" 1024 16777216 || usage_error "--nofile must be an integer >= 1024, got '${NOFILE}'"
[[ ${AGENT_USER} =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || usage_error "--user must be a user name, got '${AGENT_USER}'"
[[ -z ${CHRONY_SERVER} || ${CHRONY_SERVER} =~ ^[A-Za-z0-9.-]+$ ]] || usage_error "--chrony-server must be a host name or address, got '${CHRONY_SERVER}'"
[[ -z ${CHRONY_SERVE} || ${CHRONY_SERVE} =~ ^[0-9.]+/[0-9]{1,2}$ ]] || usage_error "--chrony-serve must be an IPv4 CIDR, got '${CHRONY_SERVE}'"
declare -a ALIASES=()
if [[ -n ${SOURCE_IPS} ]]; then
  msg=$(expand_ips "${SOURCE_IPS}") || usage_error "--source-ips: ${msg}"
  mapfile -t ALIASES <<<"${msg}"
fi
TPL=${HERE}/files
[[ -r ${TPL}/90-hongbao-sysctl.conf.j2 ]] || die "${TPL}: the templates are missing (copy provisioning/files/ next to host-tune.sh)"
# What this run touches: files (under --root), live settings of this host (only the per-namespace
# ones with --netns), and the system's services (systemd, chrony: never under --root or --netns).
FILES=1 LIVE=1 SYSTEM=1
[[ -z ${ROOT} ]] || LIVE=0 SYSTEM=0
if ((NETNS)); then
  LIVE=1 SYSTEM=0
  [[ -n ${ROOT} ]] || FILES=0
fi
if ((LIVE && !DRY_RUN && EUID != 0)); then die "needs root (or --dry-run, or --root DIR)"; fi

changed=0 unchanged=0 skipped=0
report() { # report changed|unchanged|skipped TEXT
  case $1 in
    changed) changed=$((changed + 1)) ;;
    unchanged) unchanged=$((unchanged + 1)) ;;
    skipped) skipped=$((skipped + 1)) ;;
  esac
  shift
  echo "$*"
}
# file PATH MODE CONTENT : write_file under ROOT, counted; FILE_CHANGED=1 when it (would have) changed.
FILE_CHANGED=0
file() {
  local out
  out=$(write_file "${ROOT}$1" "$2" "$3") || die "${out}"
  echo "${out}"
  case ${out} in
    unchanged*) unchanged=$((unchanged + 1)) FILE_CHANGED=0 ;;
    *) changed=$((changed + 1)) FILE_CHANGED=1 ;;
  esac
}
# template PATH NAME KEY=VALUE... : file PATH 0644 from the template files/NAME.
template() {
  local path=$1 name=$2 content
  shift 2
  content=$(render_template "${TPL}/${name}" "$@") || die "cannot render ${TPL}/${name}"
  file "${path}" 0644 "${content}"
}

# ---- kernel settings --------------------------------------------------------------------------
mapfile -t SYSCTL_VARS < <(sysctl_vars "${NOFILE}")
sysctl_conf=$(render_template "${TPL}/90-hongbao-sysctl.conf.j2" "${SYSCTL_VARS[@]}") || die "cannot render the sysctl template"
((!FILES)) || file /etc/sysctl.d/90-hongbao.conf 0644 "${sysctl_conf}"
if ((LIVE)); then
  while IFS= read -r line; do
    [[ ${line} =~ ^([a-z0-9_.-]+)\ =\ (.*)$ ]] || continue
    key=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
    if ((NETNS)) && [[ " ${HB_HOST_WIDE_SYSCTLS} " == *" ${key} "* ]]; then
      report skipped "skipped sysctl ${key} (host-wide, not changed in netns mode)"
      continue
    fi
    path=/proc/sys/${key//.//}
    if [[ ! -e ${path} ]]; then
      report skipped "skipped sysctl ${key} (not available on this kernel)"
      continue
    fi
    have=$(tr -s ' \t' '  ' <"${path}")
    if [[ ${have} == "${want}" ]]; then
      report unchanged "unchanged sysctl ${key} = ${want}"
    elif ((DRY_RUN)); then
      report changed "would set sysctl ${key}: ${have} -> ${want}"
    else
      sysctl -q -w "${key}=${want}" >/dev/null
      report changed "changed sysctl ${key}: ${have} -> ${want}"
    fi
  done <<<"${sysctl_conf}"
fi

# ---- open-file limits -------------------------------------------------------------------------
if ((!FILES)); then
  report skipped "skipped limits.d and systemd DefaultLimitNOFILE (host-wide, not changed in netns mode)"
else
  template /etc/security/limits.d/90-hongbao.conf 90-hongbao-limits.conf.j2 "hb_user=${AGENT_USER}" "hb_nofile=${NOFILE}"
  template /etc/systemd/system.conf.d/90-hongbao.conf 90-hongbao-systemd.conf.j2 "hb_nofile=${NOFILE}"
  if ((FILE_CHANGED && SYSTEM)) && command -v systemctl >/dev/null 2>&1; then
    run systemctl daemon-reexec
  fi
fi

# ---- source-IP aliases ------------------------------------------------------------------------
if ((${#ALIASES[@]} > 0)); then
  dev=${IFACE}
  if [[ ${dev} == auto ]]; then
    if ((LIVE)); then
      dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
      if [[ -z ${dev} ]]; then
        mapfile -t ups < <(ip -o link show up | awk -F': ' '{sub(/@.*/, "", $2); if ($2 != "lo") print $2}')
        ((${#ups[@]} == 1)) || die "--iface auto: no default route and ${#ups[@]} interfaces up (${ups[*]:-none}); give --iface"
        dev=${ups[0]}
      fi
    else
      dev=eth0
    fi
  fi
  if ((LIVE)); then
    [[ -e /sys/class/net/${dev} ]] || die "--iface ${dev}: no such interface"
    have=$(ip -4 -o addr show dev "${dev}")
    for ip in "${ALIASES[@]}"; do
      if [[ ${have} == *" inet ${ip}/"* ]]; then
        report unchanged "unchanged address ${ip} on ${dev}"
      else
        run ip addr add "${ip}/${PREFIX}" dev "${dev}"
        report changed "$( ((DRY_RUN)) && echo would add || echo added) address ${ip}/${PREFIX} on ${dev}"
      fi
    done
  fi
  if ((!FILES)); then
    report skipped "skipped hongbao-ip-aliases.service (no systemd in a namespace; the aliases last as long as it)"
  else
    execs=''
    for ip in "${ALIASES[@]}"; do execs+="ExecStart=/sbin/ip addr replace ${ip}/${PREFIX} dev ${dev}"$'\n'; done
    template /etc/systemd/system/hongbao-ip-aliases.service hongbao-ip-aliases.service.j2 "hb_iface=${dev}" "hb_alias_execs=${execs%$'\n'}"
    if ((FILE_CHANGED && SYSTEM)); then
      run systemctl daemon-reload
      run systemctl enable hongbao-ip-aliases.service
    fi
  fi
fi

# ---- chrony -----------------------------------------------------------------------------------
if [[ -n ${CHRONY_SERVER} || -n ${CHRONY_SERVE} ]]; then
  if ((!FILES)); then
    report skipped "skipped chrony (the clock is host-wide: namespaces share the host's clock)"
  else
    if ((SYSTEM)) && ! command -v chronyd >/dev/null 2>&1 && [[ ! -x /usr/sbin/chronyd ]]; then
      # A VM cloned from a template may have no package lists yet, or stale ones.
      run apt-get update -qq
      run apt-get install -y --no-install-recommends chrony
      report changed "$( ((DRY_RUN)) && echo would install || echo installed) chrony"
    fi
    restart=0
    if [[ -n ${CHRONY_SERVER} ]]; then
      template /etc/chrony/conf.d/hongbao-client.conf chrony-client.conf.j2 "hb_chrony_server=${CHRONY_SERVER}"
      restart=$((restart | FILE_CHANGED))
      # chronyd keeps the last makestep it reads; Debian's chrony.conf includes conf.d first and
      # sets `makestep 1 3` after it, which would override ours: comment it out.
      main=/etc/chrony/chrony.conf
      if [[ -f ${ROOT}${main} ]]; then
        content=$(sed -E 's|^([[:space:]]*makestep[[:space:]].*)$|# \1   # hongbao: conf.d/hongbao-client.conf sets makestep|' "${ROOT}${main}")
        file "${main}" 0644 "${content}"
        restart=$((restart | FILE_CHANGED))
      fi
    fi
    if [[ -n ${CHRONY_SERVE} ]]; then
      template /etc/chrony/conf.d/hongbao-server.conf chrony-server.conf.j2 "hb_chrony_allow=${CHRONY_SERVE}"
      restart=$((restart | FILE_CHANGED))
    fi
    if ((restart && SYSTEM)); then
      run systemctl enable chrony.service
      run systemctl restart chrony.service
    fi
  fi
fi

echo "host-tune.sh: ${changed} $( ((DRY_RUN)) && echo 'to change' || echo changed), ${unchanged} unchanged, ${skipped} skipped"
