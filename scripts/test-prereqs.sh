#!/usr/bin/env bash
# Makes sure what the test suite needs is on this machine: Debian's chromium (for the browser
# end-to-end tests) and PostgreSQL answering on 127.0.0.1:5432. Installs or starts what is
# missing when it can (root on Debian), and says clearly what is wrong when it cannot.
set -euo pipefail

if [ -n "${NUNQ_TEST_PG_URL:-}" ]; then
  pg_target="custom"
else
  pg_target="local"
fi

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-prereqs: installing Debian chromium for the browser tests" >&2
    (apt-get update -qq || true) >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-prereqs: chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2
    exit 1
  fi
fi

if [ "$pg_target" = "local" ] && command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if [ "$(id -u)" = "0" ] && [ -d /etc/postgresql ]; then
      echo "test-prereqs: starting PostgreSQL" >&2
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
    for _ in $(seq 1 30); do
      pg_isready -h 127.0.0.1 -p 5432 -q && break
      sleep 1
    done
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "test-prereqs: PostgreSQL is not answering on 127.0.0.1:5432 (set NUNQ_TEST_PG_URL to use another)" >&2
    exit 1
  fi
fi
