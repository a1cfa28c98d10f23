#!/usr/bin/env bash
# Makes wrk (Debian's `wrk` package) available for the closed-loop benchmark: uses the one on PATH,
# else installs it with apt-get as root. Prints wrk's path; exits non-zero if it cannot.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  command -v wrk
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "wrk is missing and this is not root: install Debian's 'wrk' package" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends wrk >&2
command -v wrk
