#!/usr/bin/env bash
# The first `invoke migrate` of a fresh clone, timed: stops the embedded demo
# server, deletes .pgdata/ (demo data only, recreated by the run), then times
# `invoke migrate` starting the server, loading the demo and building the
# indexes. Prints the run's lines with the elapsed time of each step, and the
# wall time. Usage: bash benchmarks/first_run.sh [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
for run in $(seq "${1:-3}"); do
    invoke db.stop >/dev/null
    rm -rf .pgdata
    echo "== run $run (nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f "wall %e s" invoke migrate
done
invoke db.stop >/dev/null
