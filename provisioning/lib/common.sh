# shellcheck shell=bash
# Shared helpers of the provisioning scripts: messages, --dry-run, shell quoting, IPv4 arithmetic.
# Sourced, never run. Every script that sources it has `set -euo pipefail`.

HB_PROG=${HB_PROG:-$(basename "$0")}
shopt -s inherit_errexit
DRY_RUN=${DRY_RUN:-0}

die() {
  printf '%s: %s\n' "${HB_PROG}" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: %s (see %s --help)\n' "${HB_PROG}" "$*" "${HB_PROG}" >&2
  exit 2
}

log() { printf '%s: %s\n' "${HB_PROG}" "$*" >&2; }

# q ARG... : the arguments shell-quoted on one line, so that a printed command can be pasted back.
q() {
  local out='' a
  for a in "$@"; do
    if [[ ${a} =~ ^[A-Za-z0-9_./:=@,+%^-]+$ ]]; then
      out+="${a} "
    else
      out+="'${a//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# run CMD ARG... : runs the command, or prints it as `+ CMD ARG...` under --dry-run.
run() {
  if ((DRY_RUN)); then
    printf '+ %s\n' "$(q "$@")"
  else
    "$@"
  fi
}

# need_arg FLAG VALUE : a flag's value must be present.
need_arg() {
  [[ $# -ge 2 && -n ${2} && ${2} != --* ]] || usage_error "${1} needs a value"
}

is_uint() { [[ ${1} =~ ^[0-9]{1,10}$ ]]; }

# int_in VALUE MIN MAX : VALUE is a decimal integer within [MIN, MAX].
int_in() { [[ ${1} =~ ^[0-9]{1,10}$ ]] && ((10#${1} >= $2 && 10#${1} <= $3)); }

is_ipv4() {
  local ip=$1 o
  [[ ${ip} =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  for o in "${BASH_REMATCH[@]:1}"; do
    ((10#${o} <= 255)) || return 1
  done
}

ip2int() {
  local IFS=.
  # shellcheck disable=SC2086
  set -- ${1}
  echo $(((10#$1 << 24) + (10#$2 << 16) + (10#$3 << 8) + 10#$4))
}

int2ip() {
  local n=$1
  echo "$(((n >> 24) & 255)).$(((n >> 16) & 255)).$(((n >> 8) & 255)).$((n & 255))"
}

# expand_ips LIST : a comma-separated list of IPv4 addresses and ranges A-B (or A-LASTOCTET), one
# address per output line. Returns 1 with a message on stdout naming the bad item.
expand_ips() {
  local item a b lo hi n
  local -a items
  IFS=, read -r -a items <<<"$1"
  ((${#items[@]} > 0)) || { echo "empty list"; return 1; }
  for item in "${items[@]}"; do
    if [[ ${item} == *-* ]]; then
      a=${item%%-*}
      b=${item#*-}
      [[ ${b} =~ ^[0-9]{1,3}$ ]] && b=${a%.*}.${b}
      if ! is_ipv4 "${a}" || ! is_ipv4 "${b}"; then echo "'${item}' is not an IPv4 range A-B"; return 1; fi
      lo=$(ip2int "${a}")
      hi=$(ip2int "${b}")
      ((hi >= lo)) || { echo "range '${item}' ends before it starts"; return 1; }
      ((hi - lo < 4096)) || { echo "range '${item}' has more than 4096 addresses"; return 1; }
      for ((n = lo; n <= hi; n++)); do int2ip "${n}"; done
    else
      is_ipv4 "${item}" || { echo "'${item}' is not an IPv4 address"; return 1; }
      echo "${item}"
    fi
  done
}

# write_file PATH MODE CONTENT : writes CONTENT to PATH when it differs; prints "changed PATH" or
# "unchanged PATH" (under --dry-run "would change PATH" and the new content).
write_file() {
  local path=$1 mode=$2 content=$3
  if [[ -f ${path} ]] && [[ "$(cat "${path}")" == "${content}" ]]; then
    echo "unchanged ${path}"
    return 0
  fi
  if ((DRY_RUN)); then
    echo "would write ${path} (mode ${mode}):"
    printf '%s\n' "${content}" | sed 's/^/    | /'
    return 0
  fi
  # Explicit checks, not set -e: callers may test this function's status.
  local tmp=''
  if mkdir -p "$(dirname "${path}")" && tmp=$(mktemp "${path}.XXXXXX") && printf '%s\n' "${content}" >"${tmp}" &&
    chmod "${mode}" "${tmp}" && mv -f "${tmp}" "${path}"; then
    echo "changed ${path}"
  else
    [[ -z ${tmp} ]] || rm -f "${tmp}"
    echo "could not write ${path}"
    return 1
  fi
}

# render_template FILE KEY=VALUE... : FILE (a template of provisioning/files/: Jinja2 syntax, using
# only {{ key }} placeholders, so that the Ansible playbook's template module renders the same file)
# with every {{ KEY }} replaced by VALUE. Fails, naming them, when placeholders are left.
render_template() {
  local file=$1 text kv pat val left
  shift
  text=$(<"${file}") || return 1
  for kv in "$@"; do
    pat="{{ ${kv%%=*} }}"
    val=${kv#*=}
    text=${text//"${pat}"/"${val}"}
  done
  if [[ ${text} == *'{{'* || ${text} == *'{%'* ]]; then
    left=$(grep -o '{[{%][^}]*[}%]}' <<<"${text}" | sort -u | tr '\n' ' ')
    echo "${file}: no value for ${left% }" >&2
    return 1
  fi
  printf '%s\n' "${text}"
}

# Kernel settings of files/90-hongbao-sysctl.conf.j2 that are not per network namespace: a test-bed
# "VM" (a namespace of one machine) must not change them.
# shellcheck disable=SC2034 # read by the scripts that source this file
HB_HOST_WIDE_SYSCTLS='fs.file-max fs.nr_open net.core.netdev_max_backlog'

# sysctl_vars NOFILE : the template variables of files/90-hongbao-sysctl.conf.j2 for an agent whose
# open-file limit is NOFILE (fs.nr_open must stay >= it; fs.file-max covers several agents' workers).
sysctl_vars() {
  local nr_open=$(($1 > 1048576 ? $1 : 1048576))
  echo "hb_nr_open=${nr_open}"
  echo "hb_file_max=$((nr_open * 2))"
}

# JSON output without a fork per value: json_str VAR STRING sets VAR to STRING as a JSON string
# literal; json_list VAR ITEM... sets VAR to the items as a JSON list of strings.
json_str() {
  local s=$2
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  printf -v "$1" '"%s"' "${s}"
}

json_list() {
  local -n _json_out=$1
  local _a _j _items=''
  shift
  for _a in "$@"; do
    json_str _j "${_a}"
    _items+=${_j},
  done
  _json_out="[${_items%,}]"
}
