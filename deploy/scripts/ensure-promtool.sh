#!/usr/bin/env bash
# Makes `promtool` available: uses the one on PATH, else installs Debian's `prometheus` package (which
# ships promtool) with apt-get as root. Prints promtool's path; exits non-zero if it cannot.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "promtool is missing and this is not root: install Debian's 'prometheus' package" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another test may be installing at the same time: apt's own lock serialises us.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2
# The package starts a Prometheus server through its init scripts where it can; the tests only need
# promtool, so stop it if it did start.
(command -v service >/dev/null 2>&1 && service prometheus stop >/dev/null 2>&1) || true
command -v promtool
