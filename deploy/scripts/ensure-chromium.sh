#!/usr/bin/env bash
# Makes Debian's Chromium and ChromeDriver available for the console's browser tests: uses the ones
# on PATH, else installs the `chromium` and `chromium-driver` packages with apt-get as root (no
# browser is downloaded from elsewhere). Prints ChromeDriver's path; exits non-zero if it cannot.
set -euo pipefail
if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
  command -v chromedriver
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "chromium or chromedriver is missing and this is not root: install Debian's 'chromium' and 'chromium-driver' packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another test may be installing at the same time: apt's own lock serialises us.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver >&2
command -v chromedriver
