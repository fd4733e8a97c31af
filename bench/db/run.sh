#!/bin/sh
# bench/db: provision N databases, each with its own login, through the role-db
# engine's apply against this machine's MariaDB (root over /run/mysqld/mysqld.sock)
# and PostgreSQL (postgres over /var/run/postgresql); prints the time of each step.
# Usage: bench/db/run.sh [N=1000] [mariadb|postgres|both]
set -eu
cd "$(dirname "$0")/../.."
# The dev profile is enough: the time is spent in the database servers.
exec cargo run -q -p role-db --example bench_provision -- "${1:-1000}" "${2:-both}"
