#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing and we may install it.
# Playwright's own browser download does not work on these machines; the tests point it at
# /usr/bin/chromium. Without it the browser tests skip (and fail the run when CI=true).
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/tmp/consult-chromium-install.log 2>&1 \
    || echo "Could not install chromium (see /tmp/consult-chromium-install.log); browser tests will skip."
else
  echo "No /usr/bin/chromium and no way to install it here; browser tests will skip."
fi
exit 0
