#!/usr/bin/env bash
# The C sources follow the house layout (.clang-format): make format-check.
. "$(dirname "$0")/lib/functions.sh"
requires clang-format
make -s -C "$top" format-check
