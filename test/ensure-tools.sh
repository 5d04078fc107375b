#!/usr/bin/env bash
# Installs the system tools the tests use, when missing: chrony (a real NTP server for the clock
# tests), chromium (the dashboard test) and shellcheck (the provisioning scripts). Idempotent; needs
# root and Debian's packages. Never starts a system service.
set -euo pipefail

want=()
command -v chronyd >/dev/null 2>&1 || [[ -x /usr/sbin/chronyd ]] || want+=(chrony)
# provisioning tests: ip/ss and curl for the netns fleet (shellcheck: below).
command -v ip >/dev/null 2>&1 || [[ -x /usr/sbin/ip ]] || want+=(iproute2)
command -v curl >/dev/null 2>&1 || want+=(curl)
[[ -x /usr/bin/chromium ]] || want+=(chromium)
command -v shellcheck >/dev/null 2>&1 || want+=(shellcheck)
# provisioning over ssh: an sshd per namespace, the ssh client, systemd-analyze and Ansible.
[[ -x /usr/sbin/sshd ]] || want+=(openssh-server)
command -v ssh >/dev/null 2>&1 || want+=(openssh-client)
command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
command -v ansible-playbook >/dev/null 2>&1 || want+=(ansible-core)

if ((${#want[@]} == 0)); then
  exit 0
fi
if [[ ${EUID} -ne 0 ]]; then
  echo "ensure-tools: missing ${want[*]}; install them (apt-get install ${want[*]}) or run as root" >&2
  exit 1
fi
echo "ensure-tools: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting daemons (chronyd would try to steer the clock).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e ${policy} ]]; then
  printf '#!/bin/sh\nexit 101\n' >"${policy}"
  chmod +x "${policy}"
  made_policy=1
fi
cleanup() { if ((made_policy)); then rm -f "${policy}"; fi; }
trap cleanup EXIT
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
