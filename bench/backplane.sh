#!/usr/bin/env bash
# A publish to a 500-member topic in one process, against the same 500 members split over two
# processes linked by a Redis backplane: what crossing processes costs in throughput and latency.
#
#   bench/backplane.sh [--reps N] [--duration S] [--warmup S] [--build-dir DIR] [--connections N]
#
# Needs build-dir/bench/topic_server and build-dir/bench/loadgen (meson setup -Dbench=true) and
# Debian's redis-server. For each repetition, runs both layouts one after the other:
#   in-process  one topic_server (--workers 1), every connection on it;
#   redis       two topic_servers (--workers 1 each) on one redis-server on a free port, the
#               load generator's connections alternating between them, so that each message reaches
#               half its receivers through Redis.
# Prints one JSON line per run (the load generator's, labelled with the layout).
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3
duration=5
warmup=1
build="build-bench"
connections=500
while (($#)); do
    case "$1" in
        --reps) reps=$2; shift ;;
        --duration) duration=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --build-dir) build=$2; shift ;;
        --connections) connections=$2; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "backplane.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

server="$build/bench/topic_server"
loadgen="$build/bench/loadgen"
for binary in "$server" "$loadgen"; do
    [[ -x $binary ]] || { echo "backplane.sh: $binary is missing (meson compile -C $build bench/topic_server bench/loadgen)" >&2; exit 2; }
done
redis_server=$(command -v redis-server || true)
[[ -n $redis_server ]] || { echo "backplane.sh: redis-server is missing (apt-get install redis-server)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a topic_server with the given arguments; sets `port` and `pid`.
start_server() {
    local out="$work/server.$RANDOM"
    "$server" --port 0 --workers 1 "$@" >"$out" 2>"$out.err" &
    pid=$!
    pids+=("$pid")
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$out")
        [[ -n $port ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "backplane.sh: topic_server did not start: $(cat "$out.err")" >&2
    exit 1
}

stop() { kill "$@" 2>/dev/null || true; for p in "$@"; do wait "$p" 2>/dev/null || true; done; }

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

drive() {  # label, loadgen arguments...
    local label=$1
    shift
    "$loadgen" --scenario broadcast --path /room --connections "$connections" --size 64 --publishers 4 \
        --window 4 --duration "$duration" --warmup "$warmup" --label "$label" "$@"
}

for ((rep = 1; rep <= reps; rep++)); do
    start_server
    drive in-process --port "$port" --server-pid "$pid"
    stop "$pid"

    redis_port=$(free_port)
    "$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
        --loglevel warning >"$work/redis.log" 2>&1 &
    redis_pid=$!
    pids+=("$redis_pid")
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    start_server --redis "$redis_port"
    first_port=$port first_pid=$pid
    start_server --redis "$redis_port"
    # A message published before a node's links are up is dropped, and the load generator would wait
    # for it forever: wait until Redis sees both nodes subscribed and all four links (two a node)
    # plus redis-cli's own connection.
    for _ in $(seq 200); do
        subscribed=$(redis-cli -p "$redis_port" pubsub numsub bench:broadcast:/room 2>/dev/null | sed -n 2p || true)
        clients=$(redis-cli -p "$redis_port" client list 2>/dev/null | wc -l || true)
        [[ $subscribed == 2 && $clients -ge 5 ]] && break
        sleep 0.05
    done
    drive redis --port "$first_port" --also-port "$port" --server-pid "$first_pid"
    stop "$first_pid" "$pid" "$redis_pid"
done
