#!/usr/bin/env bash
# Runs a Python firmware test after the common skip checks.
source "$(dirname "$0")/lib.sh"
need_qemu
python3 "$@" "$PF_QEMU" "$PF_FW_ELF"
