#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for a bounded time against the ASan+UBSan build;
# exit 1 on any finding.  See tools/fuzz/README.md.
#
#   tools/fuzz/run_all.sh [-t SECONDS_PER_TARGET] [-o OUTDIR] [-k] [-K auto|skip|report] [target ...]
#
#   -t  seconds per target (default 60)            -o  work dir (default: a new temp dir)
#   -k  keep going: after a finding, save it and restart the target for the rest of its time
#   -K  known-issue mode passed to the targets (default auto: skip known bugs still present)
#
# Python is the one on PATH (or $PYTHON); it must have atheris and the FASTVPC_SANITIZE=1 build of
# fastvpc.  The sanitizer runtime is atheris' asan_with_fuzzer.so (clang's ASan + UBSan +
# libFuzzer), preloaded here; the selftest first proves it catches an out-of-bounds read.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python}
SECS=60
OUT=""
KEEP=0
KNOWN=auto
while getopts "t:o:kK:" opt; do
    case $opt in
        t) SECS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        k) KEEP=1 ;;
        K) KNOWN=$OPTARG ;;
        *) sed -n 2,12p "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(forward pcap files aws pickle)
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/fastvpc-fuzz.XXXXXX)
mkdir -p "$OUT"

RUNTIME=$("$PY" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))') || exit 2
[ -f "$RUNTIME" ] || { echo "atheris' asan_with_fuzzer.so not found ($RUNTIME)" >&2; exit 2; }
# detect_leaks=0: CPython keeps memory alive on purpose; allocator_may_return_null=1: a huge numpy
# allocation is a MemoryError, as in a release build, not an ASan abort; halt_on_error: UBSan findings
# stop the run like ASan ones.  PYTHONMALLOC=malloc (targets that feed Python buffers to compiled
# code): small Python buffers get ASan redzones too; files/aws are pure Python and run 2x faster without.
export LD_PRELOAD=$RUNTIME
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1:handle_abort=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export FASTVPC_FUZZ_REQUIRE_ASAN=1

max_len() {
    case $1 in forward) echo 4096 ;; pcap) echo 8192 ;; files) echo 16384 ;; *) echo 65536 ;; esac
}

echo "fuzz: targets ${TARGETS[*]}, ${SECS}s each, work dir $OUT"
"$PY" "$HERE/asan_selftest.py" > "$OUT/selftest.log" 2>&1 || { cat "$OUT/selftest.log"; echo "sanitizer selftest failed" >&2; exit 2; }
tail -1 "$OUT/selftest.log"

FAILED=()
for t in "${TARGETS[@]}"; do
    script="$HERE/fuzz_$t.py"
    [ -f "$script" ] || { echo "no target $t ($script)" >&2; exit 2; }
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts"
    start=$(date +%s)
    left=$SECS
    # -k: each distinct finding stops the target once; later rounds count repeats (see _common._once)
    if [ $KEEP -eq 1 ]; then export FASTVPC_FUZZ_SEEN="$OUT/$t.seen"; else unset FASTVPC_FUZZ_SEEN; fi
    round=0
    found=0
    while [ "$left" -gt 0 ]; do
        round=$((round + 1))
        log="$OUT/$t.$round.log"
        # first corpus dir receives new inputs; the committed seeds are read only
        case $t in files|aws) pymalloc=pymalloc ;; *) pymalloc=malloc ;; esac
        dict=(); [ -f "$HERE/dict/$t.dict" ] && dict=(-dict="$HERE/dict/$t.dict")
        PYTHONMALLOC=$pymalloc "$PY" "$script" --known="$KNOWN" -max_total_time="$left" -timeout=10 -rss_limit_mb=3072 \
            -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" "${dict[@]}" \
            "$OUT/corpus/$t" "$HERE/corpus/$t" > "$log" 2>&1
        rc=$?
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        if [ $rc -ne 0 ] && ! grep -q -E '^\[finding\]|^==[0-9]+==ERROR|runtime error:|^SUMMARY: libFuzzer' "$log"; then
            echo "ERROR: $t did not start or died without a report (exit $rc): $log" >&2
            tail -5 "$log" >&2
            found=$((found + 1))
            break
        fi
        if [ $rc -ne 0 ]; then
            found=$((found + 1))
            echo "FINDING in $t (exit $rc, round $round): $log"
            grep -m1 -E 'ERROR: AddressSanitizer|runtime error:|ERROR: libFuzzer: (timeout|out-of-memory|deadly)' "$log" || true
            grep -m2 '^\[finding\]' "$log" || ls -t "$OUT/artifacts/$t-"* 2>/dev/null | head -1
            [ $KEEP -eq 1 ] || break
        fi
        left=$((SECS - ($(date +%s) - start)))
        [ $rc -eq 0 ] && break
    done
    echo "  $t: $(( $(date +%s) - start ))s, last round ${runs:-?} inputs, corpus $(ls "$OUT/corpus/$t" | wc -l) new, $found finding(s)"
    [ $found -eq 0 ] || FAILED+=("$t")
done
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "fuzz: findings in ${FAILED[*]} (artifacts in $OUT/artifacts; reproduce: python tools/fuzz/fuzz_<target>.py --replay FILE)"
    exit 1
fi
echo "fuzz: no findings"
