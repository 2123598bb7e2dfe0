#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the store tests and print its URL.
# Usage: .ci/postgres.sh DIR   (installs the server with apt-get if it is missing; as root, the
# server runs as the unprivileged user "postgres"; DIR/stop stops it)
set -euo pipefail
dir="$1"
bindir=""
for cand in /usr/lib/postgresql/*/bin; do
    [ -x "$cand/initdb" ] && bindir="$cand"
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
    bindir="$(dirname "$(command -v initdb)")"
fi
if [ -z "$bindir" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "postgres.sh: installing postgresql with apt-get" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        for cand in /usr/lib/postgresql/*/bin; do
            [ -x "$cand/initdb" ] && bindir="$cand"
        done
    fi
fi
[ -n "$bindir" ] || { echo "postgres.sh: no PostgreSQL server binaries found" >&2; exit 1; }
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as=(runuser -u postgres --)
fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
chmod 700 "$dir"
"${as[@]}" "$bindir/initdb" -D "$dir/pgdata" -U bayes_mem --auth=trust -E UTF8 >&2
"${as[@]}" "$bindir/pg_ctl" -D "$dir/pgdata" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200" start >&2
printf '#!/bin/sh\n%s %s -D %s -m fast stop\n' "${as[*]}" "$bindir/pg_ctl" "$dir/pgdata" \
    > "$dir/stop"
chmod +x "$dir/stop"
echo "postgresql+psycopg://bayes_mem@127.0.0.1:$port/postgres"
