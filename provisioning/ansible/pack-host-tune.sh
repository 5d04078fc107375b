#!/usr/bin/env bash
# Packs host-tune.sh, its library and the templates of provisioning/files into one self-extracting
# shell script (unpacked into a temporary directory on the host, run with the script's arguments,
# removed), for tune.yml's ansible.builtin.script task: one transfer, no Python needed on the host.
# Prints the path of the script, a new temporary file that the caller removes.
set -euo pipefail
usage() { echo "usage: pack-host-tune.sh   (prints the path of the packed script; no options but --help, no --dry-run: it changes nothing but its own temporary file)"; }
case ${1:-} in -h | --help) usage; exit 0 ;; '') ;; *) usage >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp "${TMPDIR:-/tmp}/hongbao-tune.XXXXXX")
{
  # shellcheck disable=SC2016 # the packed script's own variables
  printf '%s\n' '#!/bin/sh' '# host-tune.sh with its library and templates (provisioning/ansible/pack-host-tune.sh)' 'set -e' \
    'd=$(mktemp -d "${TMPDIR:-/tmp}/hongbao-tune.XXXXXX")' 'trap '\''rm -rf "$d"'\'' EXIT' \
    'base64 -d <<'\''PACK'\'' | tar -xz -C "$d"'
  tar -cz -C "${HERE}/.." host-tune.sh lib files | base64
  # shellcheck disable=SC2016 # the packed script's own variables
  printf '%s\n' PACK 'bash "$d/host-tune.sh" "$@"'
} >"${out}"
echo "${out}"
