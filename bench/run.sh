#!/usr/bin/env bash
# Starling against Boost.Beast and websocketpp, side by side, in one run.
#
#   bench/run.sh [--quick] [--reps N] [--duration S] [--warmup S] [--build-dir DIR]
#                [--baseline DIR] [--no-peers]
#
# Installs what is missing (Debian packages), builds Starling's examples, the load generator and the
# peer servers with -O2 in build-bench/, then for every repetition, scenario and server: starts the
# server pinned to CPU 0 (taskset -c 0), drives it with bench/loadgen pinned to CPU 1, and stops it.
# Prints a markdown table (median of the repetitions, their spread, Starling's ratio to the best peer
# and to websocketpp); the raw results (one JSON line per run) and the table are kept in the build
# directory. --quick: one short repetition, a smoke test (about a minute). --baseline DIR: also run
# the examples of another Starling build directory (an earlier commit, configured as this script
# does), side by side, with a "Starling ÷ baseline" column: how a change moved each row.
# --no-peers: Starling (and the baseline) only.
set -euo pipefail

cd "$(dirname "$0")/.."

reps=3
duration=5
warmup=1
idle_connections=10000
settle=1
build="build-bench"
quick=0
baseline=""
no_peers=0
while (($#)); do
    case "$1" in
        --quick) quick=1; reps=1; duration=1; warmup=0.3; idle_connections=2000; settle=0.5 ;;
        --reps) reps=$2; shift ;;
        --duration) duration=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --build-dir) build=$2; shift ;;
        --baseline) baseline=$(cd "$2" && pwd); shift ;;
        --no-peers) no_peers=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# ---- A scheduling group of our own ------------------------------------------------------------------
# With autogroup scheduling (the Linux default), CPU time is shared between sessions first: a compile
# running in another session would take half of "our" CPU. Re-run in a session of our own and raise
# its priority (root only; otherwise we carry on and the "other CPU" column shows the interference).
if [[ -z "${STARLING_BENCH_SESSION:-}" ]] && command -v setsid >/dev/null; then
    export STARLING_BENCH_SESSION=1
    args=(--reps "$reps" --duration "$duration" --warmup "$warmup" --build-dir "$build")
    ((quick)) && args=(--quick --reps "$reps" --build-dir "$build")
    [[ -n $baseline ]] && args+=(--baseline "$baseline")
    ((no_peers)) && args+=(--no-peers)
    setsid "$0" "${args[@]}" &
    child=$!
    trap 'kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null' INT TERM
    status=0
    wait "$child" || status=$?
    wait "$child" 2>/dev/null || true
    exit "$status"
fi
echo -20 2>/dev/null >/proc/self/autogroup || true

started=$(date +%s)

# ---- Dependencies ---------------------------------------------------------------------------------
have_header() { echo "#include <$1>" | g++ -std=c++17 -x c++ -fsyntax-only - >/dev/null 2>&1; }
missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v meson >/dev/null || missing+=(meson)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v python3 >/dev/null || missing+=(python3)
command -v taskset >/dev/null || missing+=(util-linux)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if command -v g++ >/dev/null; then
    have_header asio.hpp || missing+=(libasio-dev)
    have_header simdjson.h || missing+=(libsimdjson-dev)
    have_header boost/beast/websocket.hpp || missing+=(libboost-dev)
    have_header websocketpp/server.hpp || missing+=(libwebsocketpp-dev)
else
    missing+=(libasio-dev libsimdjson-dev libboost-dev libwebsocketpp-dev)
fi
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "run.sh: missing packages (${missing[*]}); run as root or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${missing[@]}"
fi

# ---- Build ------------------------------------------------------------------------------------------
# buildtype=release with optimization=2: -O2 and NDEBUG for everything (release alone means -O3).
setup_options=(-Dbench=true -Dbuildtype=release -Doptimization=2 -Db_ndebug=true -Dtests=disabled -Dexamples=enabled)
if [[ -f $build/build.ninja ]]; then
    meson configure "$build" "${setup_options[@]}" >/dev/null
else
    meson setup "$build" "${setup_options[@]}" >/dev/null
fi
targets=(examples/echo examples/chat bench/loadgen)
peers=()
ninja_targets=$(ninja -C "$build" -t targets all 2>/dev/null)
for peer in beast websocketpp; do
    ((no_peers)) && break
    if grep -q "^bench/${peer}_server:" <<<"$ninja_targets"; then
        targets+=("bench/${peer}_server")
        peers+=("$peer")
    else
        echo "== no ${peer}_server (its headers were not found): left out of the comparison"
    fi
done
echo "== building ${targets[*]}"
ninja -C "$build" "${targets[@]}" >/dev/null

# ---- Running ----------------------------------------------------------------------------------------
nproc_count=$(nproc)
if ((nproc_count < 2)); then
    echo "run.sh: needs two CPUs (server on CPU 0, load generator on CPU 1)" >&2
    exit 1
fi

results=$build/bench-results.jsonl
logs=$build/bench-logs
rm -rf "$logs"
mkdir -p "$logs"
: >"$results"

# scenario name | server kind (echo or chat) | load generator arguments
scenarios=(
    "echo 64 B|echo|--scenario echo --connections 100 --size 64"
    "echo 64 B, pipelined 16|echo|--scenario echo --connections 100 --size 64 --depth 16"
    "echo 16 KiB|echo|--scenario echo --connections 50 --size 16384 --binary"
    "echo 1 MiB|echo|--scenario echo --connections 4 --size 1048576 --binary"
    "broadcast 64 B to 500|chat|--scenario broadcast --connections 500 --size 64 --publishers 4 --window 4"
    "idle $idle_connections|echo|--scenario idle --connections $idle_connections --settle $settle"
)
servers=(starling "${peers[@]}")
if [[ -n $baseline ]]; then
    for program in echo chat; do
        [[ -x $baseline/examples/$program ]] || { echo "run.sh: $baseline/examples/$program not built" >&2; exit 1; }
    done
    servers+=(baseline)
fi

server_command() {  # server kind -> command line
    case "$1:$2" in
        starling:echo) echo "$build/examples/echo --port 0 --workers 1" ;;
        starling:chat) echo "$build/examples/chat --port 0 --workers 1" ;;
        baseline:*) echo "$baseline/examples/$2 --port 0 --workers 1" ;;
        *) echo "$build/bench/${1}_server --port 0" ;;
    esac
}

server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 200); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap stop_server EXIT

run_one() {  # rep scenario-index server
    local rep=$1 index=$2 server=$3
    local name kind args
    IFS='|' read -r name kind args <<<"${scenarios[$index]}"
    local tag="$server-s$index-r$rep"
    local out=$logs/$tag.out err=$logs/$tag.err
    : >"$out"
    # shellcheck disable=SC2046
    taskset -c 0 $(server_command "$server" "$kind") >"$out" 2>"$err" &
    server_pid=$!
    local port=
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$out" || true)
        [[ -n $port ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    local line
    if [[ -z $port ]]; then
        line="{\"ok\":false,\"error\":\"server did not start\"}"
    else
        local hard
        hard=$(python3 -c "print(int($warmup + $duration + $settle + 60))")
        # shellcheck disable=SC2086
        line=$(timeout "$hard" taskset -c 1 "$build/bench/loadgen" --port "$port" --server-pid "$server_pid" \
                   --duration "$duration" --warmup "$warmup" --label "$tag" $args 2>>"$err") || true
        [[ -n $line ]] || line="{\"ok\":false,\"error\":\"load generator failed or timed out\"}"
        kill -0 "$server_pid" 2>/dev/null || line="${line%\}},\"server_died\":true}"
    fi
    stop_server
    python3 - "$line" "$server" "$index" "$name" "$rep" >>"$results" <<'EOF'
import json, sys
line, server, index, name, rep = sys.argv[1:]
try:
    r = json.loads(line)
except ValueError:
    r = {"ok": False, "error": "unparsable output: " + line[:200]}
r.update(server=server, scenario_index=int(index), scenario_name=name, rep=int(rep))
print(json.dumps(r))
EOF
    local summary
    summary=$(tail -n1 "$results" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if not r.get("ok"):
    print("FAILED: " + r.get("error", "?"))
elif "kib_per_conn" in r:
    print("%.0f handshakes/s, %.1f KiB/connection" % (r["handshakes_per_s"], r["kib_per_conn"]))
else:
    print("%.0f msgs/s, p50 %.0f us, p99 %.0f us (cpu: server %.2f, loadgen %.2f, other %.2f)" % (
        r["msgs_per_s"], r["p50_us"], r["p99_us"], r.get("server_cpu", -1), r["loadgen_cpu"], r.get("other_cpu", -1)))')
    printf '   %-26s %-12s %s\n' "$name" "$server" "$summary"
}

echo "== ${#scenarios[@]} scenarios x ${#servers[@]} servers x $reps repetitions, ${duration}s each after ${warmup}s warm-up"
for ((rep = 1; rep <= reps; rep++)); do
    echo "-- repetition $rep"
    for index in "${!scenarios[@]}"; do
        for server in "${servers[@]}"; do
            run_one "$rep" "$index" "$server"
        done
    done
done

elapsed=$(($(date +%s) - started))
versions="Starling $(git describe --always --dirty 2>/dev/null || echo '?')"
versions+=", Boost $(dpkg-query -W -f='${Version}' libboost-dev 2>/dev/null || echo '?')"
versions+=", websocketpp $(dpkg-query -W -f='${Version}' libwebsocketpp-dev 2>/dev/null || echo '?')"
versions+=", g++ $(g++ -dumpfullversion), -O2"
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $nproc_count CPUs, Linux $(uname -r)"

# ---- Table ------------------------------------------------------------------------------------------
table=$build/bench-table.md
python3 - "$results" "$elapsed" "$reps" "$duration" "$warmup" "$machine" "$versions" "${servers[@]}" >"$table" <<'EOF'
import json, statistics, sys

path, elapsed, reps, duration, warmup, machine, versions, *servers = sys.argv[1:]
print("Machine: %s. Versions: %s." % (machine, versions))
print()
runs = [json.loads(l) for l in open(path) if l.strip()]
for r in runs:  # throughput per CPU-second of the server: what the server costs, whoever limited the rate
    if r.get("server_cpu", 0) > 0 and "msgs_per_s" in r:
        r["per_server_cpu"] = r["msgs_per_s"] / r["server_cpu"]
names = {}
for r in runs:
    names[r["scenario_index"]] = r["scenario_name"]
label = {"starling": "Starling", "beast": "Beast", "websocketpp": "websocketpp", "baseline": "Starling (baseline)"}

# (metric key, description, higher is better, formatter)
def rate(v):
    return "%.2fM" % (v / 1e6) if v >= 1e6 else "%.1fk" % (v / 1e3) if v >= 1e4 else "%.0f" % v
def micros(v):
    return "%.2f ms" % (v / 1e3) if v >= 1e3 else "%.0f µs" % v
def kib(v):
    return "%.1f KiB" % v
traffic = [("msgs_per_s", "messages/s", True, rate), ("per_server_cpu", "messages per server CPU-second", True, rate),
           ("p50_us", "latency p50", False, micros), ("p99_us", "latency p99", False, micros)]
idle = [("handshakes_per_s", "handshakes/s", True, rate), ("kib_per_conn", "RSS per connection", False, kib)]

def values(index, server, key):
    return [r[key] for r in runs if r["scenario_index"] == index and r["server"] == server and r.get("ok") and key in r]

def failures(index, server):
    return sum(1 for r in runs if r["scenario_index"] == index and r["server"] == server and not r.get("ok"))

peers = [s for s in servers if s not in ("starling", "baseline")]
head = ["Scenario", "Metric"] + [label[s] for s in servers] + (["Starling ÷ best peer"] if peers else [])
if "websocketpp" in peers:
    head.append("Starling ÷ websocketpp")
if "baseline" in servers:
    head.append("Starling ÷ baseline")
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|")
for index in sorted(names):
    metrics = idle if any("kib_per_conn" in r for r in runs if r["scenario_index"] == index) else traffic
    for key, what, higher, fmt in metrics:
        medians = {}
        row = [names[index], what + (" ↑" if higher else " ↓")]
        for s in servers:
            v = values(index, s, key)
            bad = failures(index, s)
            if not v:
                row.append("failed" if bad else "–")
                continue
            m = statistics.median(v)
            medians[s] = m
            spread = (max(v) - min(v)) / m * 100 if m else 0
            cell = fmt(m) + (" ±%.0f%%" % (spread / 2) if len(v) > 1 else "")
            if bad:
                cell += " (%d failed)" % bad
            row.append(cell)
        peer_medians = [medians[p] for p in peers if p in medians]
        if not peers:
            pass
        elif "starling" in medians and peer_medians:
            best = max(peer_medians) if higher else min(peer_medians)
            row.append("%.2f" % (medians["starling"] / best) if best else "–")
        else:
            row.append("–")
        if "websocketpp" in peers:
            w = medians.get("websocketpp")
            row.append("%.2f" % (medians["starling"] / w) if w and "starling" in medians else "–")
        if "baseline" in servers:
            b = medians.get("baseline")
            row.append("%.2f" % (medians["starling"] / b) if b and "starling" in medians else "–")
        print("| " + " | ".join(row) + " |")

print()
print("Median of %s repetitions; ±: half the range (max − min) over the median. ↑ higher is better, "
      "↓ lower is better; a ratio above 1 is better for Starling on ↑ rows, below 1 on ↓ rows. "
      "%ss measured after %ss warm-up per run; whole run %d min %d s." % (
          reps, duration, warmup, int(elapsed) // 60, int(elapsed) % 60))
print()
print("CPU use during the measured interval (median, in cores): server on CPU 0, load generator on CPU 1, "
      "and everything else on the machine (other processes, interrupts).")
print()
print("| Scenario | " + " | ".join(label[s] + " server / loadgen / other" for s in servers) + " |")
print("|---|" + "|".join(["--:"] * len(servers)) + "|")
for index in sorted(names):
    if not any("server_cpu" in r for r in runs if r["scenario_index"] == index):
        continue
    row = [names[index]]
    for s in servers:
        cells = []
        for key in ("server_cpu", "loadgen_cpu", "other_cpu"):
            v = values(index, s, key)
            cells.append("%.2f" % statistics.median(v) if v else "–")
        row.append(" / ".join(cells))
    print("| " + " | ".join(row) + " |")
EOF

echo
cat "$table"
echo
echo "== raw results: $results; table: $table; server logs: $logs/"
failed=$(grep -c '"ok": false' "$results" || true)
if ((failed > 0)); then
    echo "== $failed run(s) failed; see $results" >&2
    exit 1
fi
