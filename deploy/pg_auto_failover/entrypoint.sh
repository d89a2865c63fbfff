#!/bin/sh
# One pg_auto_failover member of the compose formation: the monitor, or a twin's data node. The first
# boot creates it (tuned to fail over in ~10 s, as tools/formation.py does on loopback); every later
# boot resumes it, and a data node that was the primary rejoins as the standby by itself.
set -eu
: "${PGDATA:?}" "${PGAF_ROLE:?monitor or node}" "${PGAF_HOSTNAME:?}"
PGAF_PORT="${PGAF_PORT:-5432}"
CONF_DIR="${PGAF_CONF_DIR:-/etc/ezla}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  case "$PGAF_ROLE" in
    monitor)
      # trust within the formation's internal network only (compose.yaml: network "db", no ports).
      pg_autoctl create monitor --hostname "$PGAF_HOSTNAME" --pgport "$PGAF_PORT" --auth trust --ssl-self-signed
      cp "$CONF_DIR/monitor-failover.conf" "$PGDATA/ezla-failover.conf"
      echo "include_if_exists = 'ezla-failover.conf'" >> "$PGDATA/postgresql.conf"
      ;;
    node)
      : "${PGAF_NAME:?}" "${PGAF_MONITOR:?}"
      pg_autoctl create postgres --name "$PGAF_NAME" --hostname "$PGAF_HOSTNAME" --pgport "$PGAF_PORT" \
        --dbname ezla --auth trust --ssl-self-signed --pg-hba-lan --monitor "$PGAF_MONITOR"
      pg_autoctl config set timeout.network_partition_timeout 2
      # The app nodes reach every database (ezla, ezla_registry, and the maintenance database
      # ezla.migrate.ensure_database uses) from the formation's internal network.
      echo "host all all samenet trust" >> "$PGDATA/pg_hba.conf"
      ;;
    *)
      echo "PGAF_ROLE must be monitor or node" >&2
      exit 2
      ;;
  esac
fi
exec pg_autoctl run
