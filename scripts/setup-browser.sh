#!/usr/bin/env bash
# Installs what the browser tests need, idempotently: Debian's Chromium
# (/usr/bin/chromium) and the web/ dev dependencies (playwright-core, from
# the committed package-lock.json). Safe to run again: each step is skipped
# when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "setup-browser: installing chromium"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
else
  echo "setup-browser: chromium already installed"
fi

if [ ! -d web/node_modules/playwright-core ]; then
  echo "setup-browser: npm ci in web/"
  # playwright-core never downloads a browser on install; we use /usr/bin/chromium.
  npm ci --prefix web --no-audit --no-fund
else
  echo "setup-browser: web/node_modules already installed"
fi
