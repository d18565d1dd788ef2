#!/bin/sh
# Line and branch coverage of milter/ that the fuzz corpora reach: make fuzz-coverage.
#
#   tests/fuzz/coverage.sh COV_BUILD_DIR FUZZ_BUILD_DIR TARGET...
#
# Each target of COV_BUILD_DIR (built with -fprofile-instr-generate
# -fcoverage-mapping) runs once over its corpora (the checked-in seeds and
# what fuzzing found in FUZZ_BUILD_DIR/corpus), then llvm-cov reports the
# milter/ files that target is about. Needs llvm-profdata and llvm-cov
# (package llvm).

set -u
cov=$1
fuzz=$2
shift 2
here=$(dirname "$0")

files_of() {
	case $1 in
	fuzz_render) echo escape record render session ;;
	fuzz_callbacks) echo callbacks header registry live expose metrics cfgstore outcome ;;
	fuzz_reply) echo reply ;;
	fuzz_config) echo config ;;
	fuzz_logreader) echo explain maillog maillog_sendmail verdict summary ;;
	esac
}

for t in "$@"; do
	mkdir -p "$fuzz/corpus/$t"
	LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/$t" -runs=0 -detect_leaks=0 \
		"$fuzz/corpus/$t" "$here/corpus/$t" >"$cov/$t.run.log" 2>&1
	llvm-profdata merge -o "$cov/$t.profdata" "$cov/$t.profraw" || exit 1
	srcs=""
	for f in $(files_of "$t"); do
		[ -f "milter/$f.c" ] && srcs="$srcs milter/$f.c"
	done
	echo "== $t"
	# shellcheck disable=SC2086
	llvm-cov report "$cov/$t" -instr-profile="$cov/$t.profdata" $srcs |
		awk 'NR > 2 && NF >= 13 { n = split($1, p, "/");
			printf "  %-20s lines %5d/%-5d %7s  branches %5d/%-5d %7s\n",
			p[n], $8 - $9, $8, $10, $11 - $12, $11, $13 }'
done
