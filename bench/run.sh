#!/usr/bin/env bash
# Starling against Boost.Beast and websocketpp, side by side, in one run.
#
#   bench/run.sh [--quick] [--reps N] [--duration S] [--warmup S] [--build-dir DIR]
#                [--baseline DIR] [--no-peers] [--tls] [--deflate] [--metrics] [--no-plain] [--idle N]
#                [--peer uws=PATH]
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
# --tls: also the wss:// rows (echo 64 B, 16 KiB, 1 MiB, broadcast, idle) for Starling and Beast, with
# a certificate made for the run, and a "TLS ÷ plain" table from the plain rows of the same run.
# --deflate: also the permessage-deflate rows (echo 64 B, echo 16 KiB of text, broadcast 64 B) for
# Starling, Beast and websocketpp. --metrics: also Starling with its counters compiled out
# (STARLING_NO_METRICS) on echo 64 B, pipelined and broadcast, with a "counters on ÷ off" column.
# --no-plain: only the plain rows that the chosen --tls/--metrics rows are compared with. --idle N:
# connections in the idle rows (10000; 2000 with --quick). --peer uws=PATH: uWebSockets as one more
# peer in the plain rows, a uws_server built locally (it is not a Debian package: build it with the
# uWebSockets and uSockets repositories and their own flags; it takes its port as its only argument,
# serves /echo and /chat, and has neither TLS nor compression). Left out when not given.
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
with_tls=0
with_deflate=0
with_metrics=0
no_plain=0
idle_set=""
uws_path=""
while (($#)); do
    case "$1" in
        --quick) quick=1; reps=1; duration=1; warmup=0.3; idle_connections=2000; settle=0.5 ;;
        --reps) reps=$2; shift ;;
        --duration) duration=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --build-dir) build=$2; shift ;;
        --baseline) baseline=$(cd "$2" && pwd); shift ;;
        --no-peers) no_peers=1 ;;
        --tls) with_tls=1 ;;
        --deflate) with_deflate=1 ;;
        --metrics) with_metrics=1 ;;
        --no-plain) no_plain=1 ;;
        --idle) idle_set=$2; shift ;;
        --peer)
            case "$2" in
                uws=*) uws_path=$(realpath "${2#uws=}") ;;
                *) echo "run.sh: --peer takes uws=PATH" >&2; exit 2 ;;
            esac
            [[ -x $uws_path ]] || { echo "run.sh: $uws_path is not an executable" >&2; exit 2; }
            shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $idle_set ]] && idle_connections=$idle_set

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
    ((with_tls)) && args+=(--tls)
    ((with_deflate)) && args+=(--deflate)
    ((with_metrics)) && args+=(--metrics)
    ((no_plain)) && args+=(--no-plain)
    [[ -n $uws_path ]] && args+=(--peer "uws=$uws_path")
    [[ -n $idle_set ]] && args+=(--idle "$idle_set")
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
command -v openssl >/dev/null || missing+=(openssl)
if command -v g++ >/dev/null; then
    have_header asio.hpp || missing+=(libasio-dev)
    have_header simdjson.h || missing+=(libsimdjson-dev)
    have_header boost/beast/websocket.hpp || missing+=(libboost-dev)
    have_header websocketpp/server.hpp || missing+=(libwebsocketpp-dev)
    have_header openssl/ssl.h || missing+=(libssl-dev)
    have_header zlib.h || missing+=(zlib1g-dev)
else
    missing+=(libasio-dev libsimdjson-dev libboost-dev libwebsocketpp-dev libssl-dev zlib1g-dev)
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
((with_metrics)) && targets+=(bench/echo_nometrics bench/chat_nometrics)
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
if [[ -n $uws_path ]] && ! ((no_peers)); then
    peers+=(uws)
else
    uws_path=""
fi
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

servers=(starling "${peers[@]}")
((with_metrics)) && servers+=(starling-nometrics)
if [[ -n $baseline ]]; then
    for program in echo chat; do
        [[ -x $baseline/examples/$program ]] || { echo "run.sh: $baseline/examples/$program not built" >&2; exit 1; }
    done
    servers+=(baseline)
fi
has_beast=0
[[ " ${peers[*]} " == *" beast "* ]] && has_beast=1

# A certificate for the wss:// rows, made for this run (ECDSA P-256, valid one day): nothing kept.
tls_dir=$build/bench-tls
if ((with_tls)); then
    mkdir -p "$tls_dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
        -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null
fi

# group (plain, tls or deflate) | scenario name | server kind (echo or chat) | load generator arguments |
# the servers that run it. A tls or deflate row is compared with the plain row of the same name.
scenarios=()
standard="starling ${peers[*]}${baseline:+ baseline}"
compressing="${standard/ uws/}"  # uws_server is built without zlib: no compressed rows
plain_row() {  # name kind args needed-by-tls needed-by-metrics
    local list=""
    ((no_plain)) || list="$standard"
    ((with_tls && $4)) && list+=" starling$( ((has_beast)) && echo ' beast')"
    ((with_metrics && $5)) && list+=" starling starling-nometrics"
    [[ -n ${list// /} ]] && scenarios+=("plain|$1|$2|$3|$list")
    return 0
}
echo_64="--scenario echo --connections 100 --size 64"
broadcast_64="--scenario broadcast --connections 500 --size 64 --publishers 4 --window 4"
idle_args="--scenario idle --connections $idle_connections --settle $settle"
plain_row "echo 64 B" echo "$echo_64" 1 1
plain_row "echo 64 B, pipelined 16" echo "$echo_64 --depth 16" 0 1
plain_row "echo 16 KiB" echo "--scenario echo --connections 50 --size 16384 --binary" 1 0
plain_row "echo 1 MiB" echo "--scenario echo --connections 4 --size 1048576 --binary" 1 0
plain_row "broadcast 64 B to 500" chat "$broadcast_64" 1 1
plain_row "idle $idle_connections" echo "$idle_args" 1 0
if ((with_tls)); then
    tls_servers="starling$( ((has_beast)) && echo ' beast')"
    scenarios+=(
        "tls|echo 64 B|echo|$echo_64|$tls_servers"
        "tls|echo 16 KiB|echo|--scenario echo --connections 50 --size 16384 --binary|$tls_servers"
        "tls|echo 1 MiB|echo|--scenario echo --connections 4 --size 1048576 --binary|$tls_servers"
        "tls|broadcast 64 B to 500|chat|$broadcast_64|$tls_servers"
        "tls|idle $idle_connections|echo|$idle_args|$tls_servers"
    )
fi
if ((with_deflate)); then
    # Starling compresses by default (above 256 bytes); the peers are started with --deflate.
    scenarios+=(
        "deflate|echo 64 B|echo|$echo_64|$compressing"
        "deflate|echo 16 KiB of text|echo|--scenario echo --connections 50 --size 16384 --filler text|$compressing"
        "deflate|broadcast 64 B to 500|chat|$broadcast_64|$compressing"
    )
fi

if ((${#scenarios[@]} == 0)); then
    echo "run.sh: --no-plain leaves nothing to run without --tls, --deflate or --metrics" >&2
    exit 2
fi

server_command() {  # server kind group -> command line
    local tls_args="" deflate_args=""
    [[ $3 == tls ]] && tls_args=" --tls-cert $tls_dir/cert.pem --tls-key $tls_dir/key.pem"
    [[ $3 == deflate ]] && deflate_args=" --deflate"
    case "$1:$2" in
        starling:*) echo "$build/examples/$2 --port 0 --workers 1$tls_args" ;;
        starling-nometrics:*) echo "$build/bench/${2}_nometrics --port 0 --workers 1$tls_args" ;;
        baseline:*) echo "$baseline/examples/$2 --port 0 --workers 1$tls_args" ;;
        # uws_server prints the port it was given, so it gets a free one rather than 0.
        uws:*) echo "$uws_path $(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" ;;
        *) echo "$build/bench/${1}_server --port 0$deflate_args$tls_args" ;;
    esac
}

runs_server() {  # scenario-index server: does that scenario run on that server?
    local group name kind args list
    IFS='|' read -r group name kind args list <<<"${scenarios[$1]}"
    [[ " $list " == *" $2 "* ]]
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
    local group name kind args list
    IFS='|' read -r group name kind args list <<<"${scenarios[$index]}"
    local loadgen_mode=""
    [[ $group == tls ]] && loadgen_mode="--tls"
    [[ $group == deflate ]] && loadgen_mode="--deflate"
    local tag="$server-s$index-r$rep"
    local out=$logs/$tag.out err=$logs/$tag.err
    : >"$out"
    # shellcheck disable=SC2046
    taskset -c 0 $(server_command "$server" "$kind" "$group") >"$out" 2>"$err" &
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
                   --duration "$duration" --warmup "$warmup" --label "$tag" $loadgen_mode $args 2>>"$err") || true
        [[ -n $line ]] || line="{\"ok\":false,\"error\":\"load generator failed or timed out\"}"
        kill -0 "$server_pid" 2>/dev/null || line="${line%\}},\"server_died\":true}"
    fi
    stop_server
    python3 - "$line" "$server" "$index" "$name" "$rep" "$group" >>"$results" <<'EOF'
import json, sys
line, server, index, name, rep, group = sys.argv[1:]
try:
    r = json.loads(line)
except ValueError:
    r = {"ok": False, "error": "unparsable output: " + line[:200]}
r.update(server=server, scenario_index=int(index), scenario_name=name, rep=int(rep), group=group)
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
    printf '   %-8s %-26s %-18s %s\n' "$group" "$name" "$server" "$summary"
}

echo "== ${#scenarios[@]} scenarios on up to ${#servers[@]} servers x $reps repetitions, ${duration}s each after ${warmup}s warm-up"
for ((rep = 1; rep <= reps; rep++)); do
    echo "-- repetition $rep"
    # Every other repetition runs the servers in the opposite order, so that a load that rises or
    # falls during a repetition does not always favour the same server.
    order=("${servers[@]}")
    if ((rep % 2 == 0)); then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    for index in "${!scenarios[@]}"; do
        for server in "${order[@]}"; do
            runs_server "$index" "$server" && run_one "$rep" "$index" "$server"
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
names, groups = {}, {}
for r in runs:
    names[r["scenario_index"]] = r["scenario_name"]
    groups[r["scenario_index"]] = r.get("group", "plain")
label = {"starling": "Starling", "beast": "Beast", "websocketpp": "websocketpp", "uws": "uWebSockets",
         "baseline": "Starling (baseline)",
         "starling-nometrics": "Starling, counters compiled out"}
suffix = {"plain": "", "tls": ", wss://", "deflate": ", permessage-deflate"}
def title(index):
    return names[index] + suffix[groups[index]]

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
def metrics_of(index):
    return idle if any("kib_per_conn" in r for r in runs if r["scenario_index"] == index) else traffic

def values(index, server, key):
    return [r[key] for r in runs if r["scenario_index"] == index and r["server"] == server and r.get("ok") and key in r]

def by_rep(index, server, key):
    return {r["rep"]: r[key] for r in runs if r["scenario_index"] == index and r["server"] == server and r.get("ok") and key in r}

def failures(index, server):
    return sum(1 for r in runs if r["scenario_index"] == index and r["server"] == server and not r.get("ok"))

def ratio(a, b):
    """A ratio of medians, (index, server) a over b, with the range of the per-repetition ratios (the
    runs of one repetition are next to each other in time, so they shared the machine's load)."""
    va, vb = values(*a), values(*b)
    if not va or not vb or statistics.median(vb) == 0:
        return "–"
    cell = "%.2f" % (statistics.median(va) / statistics.median(vb))
    ra, rb = by_rep(*a), by_rep(*b)
    each = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
    if len(each) > 1:
        cell += " (%.2f–%.2f)" % (min(each), max(each))
    return cell

def twin(index):  # the plain row of a tls or deflate row
    for i in names:
        if groups[i] == "plain" and names[i] == names[index]:
            return i
    return None

shown = [s for s in servers if any(r["server"] == s for r in runs)]
peers = [s for s in shown if s not in ("starling", "baseline", "starling-nometrics")]
head = ["Scenario", "Metric"] + [label[s] for s in shown] + (["Starling ÷ best peer"] if peers else [])
if "websocketpp" in peers:
    head.append("Starling ÷ websocketpp")
if "baseline" in shown:
    head.append("Starling ÷ baseline")
if "starling-nometrics" in shown:
    head.append("counters on ÷ off")
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] * 2 + ["--:"] * (len(head) - 2)) + "|")
for index in sorted(names):
    for key, what, higher, fmt in metrics_of(index):
        medians = {}
        row = [title(index), what + (" ↑" if higher else " ↓")]
        for s in shown:
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
        peer_medians = {p: medians[p] for p in peers if p in medians}
        if not peers:
            pass
        elif "starling" in medians and peer_medians:
            best = (max if higher else min)(peer_medians, key=peer_medians.get)
            row.append(ratio((index, "starling", key), (index, best, key)) + ("" if len(peer_medians) == 1 else " " + label[best]))
        else:
            row.append("–")
        if "websocketpp" in peers:
            row.append(ratio((index, "starling", key), (index, "websocketpp", key)))
        if "baseline" in shown:
            row.append(ratio((index, "starling", key), (index, "baseline", key)))
        if "starling-nometrics" in shown:
            row.append(ratio((index, "starling", key), (index, "starling-nometrics", key)))
        print("| " + " | ".join(row) + " |")

print()
print("Median of %s repetitions; ±: half the range (max − min) over the median. ↑ higher is better, "
      "↓ lower is better; a ratio above 1 is better for Starling on ↑ rows, below 1 on ↓ rows. A ratio is "
      "of the medians, with the range of the ratios within each repetition in brackets. "
      "%ss measured after %ss warm-up per run; whole run %d min %d s." % (
          reps, duration, warmup, int(elapsed) // 60, int(elapsed) % 60))

tls_rows = [i for i in sorted(names) if groups[i] == "tls" and twin(i) is not None]
if tls_rows:
    tls_servers = [s for s in shown if any(r["server"] == s and r.get("group") == "tls" for r in runs)]
    print()
    print("TLS ÷ plain: each server's wss:// row over its plain row of the same run (ratio of medians, "
          "range of the per-repetition ratios).")
    print()
    print("| Scenario | Metric | " + " | ".join(label[s] + " TLS ÷ plain" for s in tls_servers) + " |")
    print("|---|---|" + "|".join(["--:"] * len(tls_servers)) + "|")
    for index in tls_rows:
        for key, what, higher, fmt in metrics_of(index):
            if key in ("p50_us", "p99_us"):
                continue
            row = [names[index], what + (" ↑" if higher else " ↓")]
            row += [ratio((index, s, key), (twin(index), s, key)) for s in tls_servers]
            print("| " + " | ".join(row) + " |")

tls_info = sorted({r["tls"] for r in runs if r.get("tls")})
if tls_info:
    print()
    print("TLS negotiated: %s." % ", ".join(tls_info))
compressed = [r for r in runs if r.get("group") == "deflate" and r.get("ok")]
if compressed:
    print()
    print("Messages that arrived compressed in the permessage-deflate rows (first repetition, warm-up included): " +
          "; ".join("%s, %s: %d" % (label[r["server"]], r["scenario_name"], r.get("compressed_messages", 0))
                    for r in compressed if r["rep"] == 1) + ".")
print()
print("CPU use during the measured interval (median, in cores): server on CPU 0, load generator on CPU 1, "
      "and everything else on the machine (other processes, interrupts).")
print()
print("| Scenario | " + " | ".join(label[s] + " server / loadgen / other" for s in shown) + " |")
print("|---|" + "|".join(["--:"] * len(shown)) + "|")
for index in sorted(names):
    if not any("server_cpu" in r for r in runs if r["scenario_index"] == index):
        continue
    row = [title(index)]
    for s in shown:
        cells = []
        for key in ("server_cpu", "loadgen_cpu", "other_cpu"):
            v = values(index, s, key)
            cells.append("%.2f" % statistics.median(v) if v else "–")
        row.append(" / ".join(cells) if any(c != "–" for c in cells) else "–")
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
