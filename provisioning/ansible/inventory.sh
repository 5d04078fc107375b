#!/usr/bin/env bash
# Ansible dynamic inventory: the fleet inventory that fleet.sh reads ($HONGBAO_INVENTORY, else
# provisioning/inventory) as Ansible's JSON, through `fleet.sh ansible-inventory`: groups
# hongbao_agents (the VMs) and hongbao_controller (controller-ssh), and every value the playbooks
# need, computed by fleet.sh itself. The bundle deployed: $HONGBAO_DIST [dist/hongbao.cjs].
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case ${1:-} in
  --list)
    args=()
    [[ -z ${HONGBAO_DIST:-} ]] || args=(--dist "${HONGBAO_DIST}")
    exec bash "${HERE}/../fleet.sh" "${args[@]}" ansible-inventory
    ;;
  --host) echo '{}' ;;
  *)
    echo "usage: inventory.sh --list | --host NAME   (Ansible calls it; HONGBAO_INVENTORY=FILE picks the inventory)" >&2
    exit 2
    ;;
esac
