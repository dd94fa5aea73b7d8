#!/usr/bin/env bash
# Build cost, in one run: `g++ -O2 -c` of examples/chat.cpp against the single header, next to the
# floor (bench/build_cost/floor.cpp: a bare Asio coroutine echo server plus <simdjson.h>). Each is
# compiled REPS times (default 3); the medians and their ratio are printed. Target: ratio <= 1.25.
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${REPS:-3}"
cxx="${CXX:-g++}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# examples/chat.cpp includes "cli.hpp", which includes <starling.hpp>: resolve it to the single header.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {  # measure NAME SOURCE FLAGS...
  local name="$1" source="$2"; shift 2
  for _ in $(seq "$reps"); do
    local start end
    start=$(date +%s.%N)
    "$cxx" -std=c++20 -O2 -c "$source" -o "$out/$name.o" "$@"
    end=$(date +%s.%N)
    /usr/bin/python3 -c "print($end - $start)"
  done | median
}

floor=$(measure floor bench/build_cost/floor.cpp)
chat=$(measure chat examples/chat.cpp -I single_include)
ratio=$(/usr/bin/python3 -c "print(f'{$chat / $floor:.2f}')")
printf '| build | g++ -O2 -c, median of %s |\n|---|---|\n' "$reps"
printf '| floor: Asio coroutine echo + simdjson.h | %.1f s |\n' "$floor"
printf '| examples/chat.cpp with single_include/starling.hpp | %.1f s |\n' "$chat"
printf '| ratio | %s (target <= 1.25) |\n' "$ratio"
