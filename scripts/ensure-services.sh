#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, database `test`, trust auth) and Redis
# (127.0.0.1:6379) answer on loopback. Development and CI machines normally run
# both already; on a fresh Debian machine this installs and starts them. It also
# installs bubblewrap (`bwrap`, the code sandbox's backend) when it is missing.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "ensure-services: nothing answers on 127.0.0.1:$1" >&2; return 1
}

# --- PostgreSQL --------------------------------------------------------------
if ! port_open 5432; then
  echo "ensure-services: PostgreSQL is not running on 127.0.0.1:5432; starting it" >&2
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  # Tests connect over loopback without a password, as on the CI machines.
  if ! grep -q "tether: trust loopback" "$hba"; then
    as_root sed -i '1i # tether: trust loopback (test machine)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || as_root pg_ctlcluster "$ver" main start
  wait_port 5432
fi
if command -v psql >/dev/null 2>&1; then
  if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null 2>&1 \
      || as_root su postgres -c "createdb test" >/dev/null 2>&1 || true
  fi
fi

# --- Redis ---------------------------------------------------------------------
if ! port_open 6379; then
  echo "ensure-services: Redis is not running on 127.0.0.1:6379; starting it" >&2
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p /tmp/tether-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/tether-redis --logfile /tmp/tether-redis/redis.log
  wait_port 6379
fi
# --- bubblewrap (the code sandbox; tests/controls/test_sandbox.py) ------------------
if ! command -v bwrap >/dev/null 2>&1; then
  echo "ensure-services: bubblewrap is not installed; installing it" >&2
  apt_install bubblewrap
fi
echo "ensure-services: PostgreSQL and Redis are up on loopback" >&2
