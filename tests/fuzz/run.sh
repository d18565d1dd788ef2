#!/bin/sh
# Run each fuzz target for a while with its seed corpus: make fuzz, make fuzz-check.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
#   FUZZ_RUNS=N FUZZ_SEED=S tests/fuzz/run.sh ...   a fixed number of runs
#                                                   from a fixed seed instead
#
# make fuzz-check (in make check) runs a fixed number of inputs from a fixed
# seed, so that it tries the same inputs every time: a failure there is a
# change in the code, not the luck of the draw; make fuzz explores for real.
#
# New inputs go to BUILD_DIR/corpus/TARGET (a scratch directory listed
# first, so libFuzzer writes there); the checked-in tests/fuzz/corpus/TARGET
# is only read. A crash is saved under BUILD_DIR/artifacts/TARGET/. The
# full libFuzzer output is BUILD_DIR/logs/TARGET.log; this prints one line
# per target (runs, exec/s, coverage) and the end of the log on failure.
# Exit status: 0 when every target ran clean.

set -u
build=$1
seconds=$2
shift 2
here=$(dirname "$0")
status=0
LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

for t in "$@"; do
	work=$build/corpus/$t
	art=$build/artifacts/$t
	log=$build/logs/$t.log
	mkdir -p "$work" "$art" "$build/logs"
	if [ -n "${FUZZ_RUNS:-}" ]; then
		set -- -runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}"
	else
		set -- -max_total_time="$seconds"
	fi
	set -- "$@" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/"
	[ -f "$here/$t.dict" ] && set -- "$@" -dict="$here/$t.dict"
	[ -f "$here/$t.options" ] && set -- "$@" $(cat "$here/$t.options")
	start=$(date +%s)
	if "$build/$t" "$@" "$work" "$here/corpus/$t" >"$log" 2>&1; then
		rc=ok
	else
		rc=FAILED
		status=1
	fi
	took=$(( $(date +%s) - start ))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1)
	printf 'fuzz: %-16s %s: %s runs in %s s, %s exec/s, %s\n' \
		"$t" "$rc" "${runs:-?}" "$took" "${speed:-?}" "${cov:-no coverage line}"
	if [ "$rc" = FAILED ]; then
		tail -n 40 "$log"
		echo "fuzz: $t: full log $log; crash inputs in $art/"
	fi
done
exit $status
