#!/bin/bash
# Check the Prometheus rules and the Grafana dashboard of smtptrace.
#
#   conf/prometheus/check.sh
#
# With promtool (Debian: apt-get install prometheus): `promtool check rules`,
# `promtool check metrics` on a synthetic exposition that follows the
# metrics contract, a check that every smtptrace_* name the rules and the
# dashboard use is one the milter exports, that every outcome="..." they
# and the tests match is one the milter exports (the OUTCOME_MILTER rows
# of milter/outcome.def), and `promtool test rules` on
# smtptrace.rules.test.yml. Without promtool those are skipped (exit 0 for
# them). Always: the dashboard is valid JSON (python3 -m json.tool), with
# unique panel ids and panels that do not overlap.
# Last line: "prometheus: N passed, M failed"; exit 1 if anything failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rules="$here/smtptrace.rules.yml"
tests="$here/smtptrace.rules.test.yml"
dashboard="$here/smtptrace-dashboard.json"
python=/usr/bin/python3
# The outcomes smtptrace_transactions_total carries: those of scope
# OUTCOME_MILTER in milter/outcome.def, in its order. The OUTCOME_LOG ones
# (abandoned-after-354, refused-at-data, discarded) are only told by the
# MTA's log (smtptrace-explain --verdicts), never by the metrics.
outcomes=(accepted refused-after-354 ended-after-354 timeout-after-354
	aborted-in-content aborted-before-data no-valid-recipients)
outcome_def="$here/../../milter/outcome.def"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A scrape of a milter that has seen a little traffic: every metric of the
# contract, with its HELP, TYPE, labels and buckets.
write_sample() {
	local sb=(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 +Inf)
	local bb=(1024 4096 16384 65536 262144 1048576 4194304 16777216 67108864 +Inf)
	local le phase outcome kind i
	{
		echo '# HELP smtptrace_build_info smtptrace version.'
		echo '# TYPE smtptrace_build_info gauge'
		echo 'smtptrace_build_info{version="0.1.0"} 1'
		echo '# HELP smtptrace_connections_open SMTP connections open now.'
		echo '# TYPE smtptrace_connections_open gauge'
		echo 'smtptrace_connections_open 3'
		echo '# HELP smtptrace_connections_total SMTP connections seen.'
		echo '# TYPE smtptrace_connections_total counter'
		echo 'smtptrace_connections_total 42'
		echo '# HELP smtptrace_transactions_total Transactions by how they ended.'
		echo '# TYPE smtptrace_transactions_total counter'
		i=0
		for outcome in "${outcomes[@]}"; do
			echo "smtptrace_transactions_total{outcome=\"$outcome\"} $(( i == 0 ? 30 : i ))"
			i=$((i + 1))
		done
		echo '# HELP smtptrace_transactions_in_data Transactions after 354 whose content has not come yet.'
		echo '# TYPE smtptrace_transactions_in_data gauge'
		echo 'smtptrace_transactions_in_data 2'
		echo '# HELP smtptrace_transactions_stalled Of those, the ones past stall.warn_after.'
		echo '# TYPE smtptrace_transactions_stalled gauge'
		echo 'smtptrace_transactions_stalled 1'
		echo '# HELP smtptrace_stalls_total Transactions that passed stall.warn_after.'
		echo '# TYPE smtptrace_stalls_total counter'
		echo 'smtptrace_stalls_total 3'
		echo '# HELP smtptrace_rejected_recipients_total Recipients the MTA rejected, by enhanced status code.'
		echo '# TYPE smtptrace_rejected_recipients_total counter'
		echo 'smtptrace_rejected_recipients_total{enhanced="5.1.1"} 4'
		echo 'smtptrace_rejected_recipients_total{enhanced="5.7.1"} 2'
		echo 'smtptrace_rejected_recipients_total{enhanced="other"} 1'
		echo '# HELP smtptrace_phase_duration_seconds Time spent in each SMTP phase.'
		echo '# TYPE smtptrace_phase_duration_seconds histogram'
		for phase in helo mail rcpt data upload content; do
			i=0
			for le in "${sb[@]}"; do
				echo "smtptrace_phase_duration_seconds_bucket{phase=\"$phase\",le=\"$le\"} $(( i < 4 ? 0 : 10 ))"
				i=$((i + 1))
			done
			echo "smtptrace_phase_duration_seconds_sum{phase=\"$phase\"} 1.25"
			echo "smtptrace_phase_duration_seconds_count{phase=\"$phase\"} 10"
		done
		echo '# HELP smtptrace_upload_seconds Time from DATA to the first content event.'
		echo '# TYPE smtptrace_upload_seconds histogram'
		i=0
		for le in "${sb[@]}"; do
			echo "smtptrace_upload_seconds_bucket{le=\"$le\"} $(( i < 7 ? 0 : 30 ))"
			i=$((i + 1))
		done
		echo 'smtptrace_upload_seconds_sum 21.5'
		echo 'smtptrace_upload_seconds_count 30'
		echo '# HELP smtptrace_upload_bytes Header and body bytes of each message.'
		echo '# TYPE smtptrace_upload_bytes histogram'
		i=0
		for le in "${bb[@]}"; do
			echo "smtptrace_upload_bytes_bucket{le=\"$le\"} $(( i < 2 ? 0 : 30 ))"
			i=$((i + 1))
		done
		echo 'smtptrace_upload_bytes_sum 307200'
		echo 'smtptrace_upload_bytes_count 30'
		echo '# HELP smtptrace_degraded_total Times the milter observed less, by kind.'
		echo '# TYPE smtptrace_degraded_total counter'
		for kind in no-memory no-session header-edit log-cut log-shortened log-dropped \
			    fd-limit header-cut registry-full; do
			echo "smtptrace_degraded_total{kind=\"$kind\"} 0"
		done
	} >"$1"
}

if command -v promtool >/dev/null 2>&1; then
	if promtool check rules "$rules" >"$tmp/out" 2>&1; then
		pass "promtool check rules $(basename "$rules")"
	else
		cat "$tmp/out"
		fail "promtool check rules $(basename "$rules")"
	fi

	write_sample "$tmp/sample.prom"
	if promtool check metrics <"$tmp/sample.prom" >"$tmp/out" 2>&1; then
		pass "promtool check metrics: synthetic exposition ($(grep -vc '^#' "$tmp/sample.prom") samples)"
	else
		cat "$tmp/out"
		fail "promtool check metrics: synthetic exposition"
	fi

	# Every smtptrace_* name used must be exported (a histogram's
	# _bucket/_sum/_count included); a typo would make a rule silently empty.
	# (Recorded names, level:smtptrace_...:operation, are not exported.)
	exported=$({ grep -v '^#' "$tmp/sample.prom" | sed 's/[{ ].*//'
		awk '$2 == "TYPE" { print $3 }' "$tmp/sample.prom"; } | sort -u)
	used=$(grep -ohP '(?<![a-z_:])smtptrace_[a-z0-9_]++(?!:[a-z0-9])' "$rules" "$dashboard" | sort -u)
	unknown=""
	for name in $used; do
		grep -qxF "$name" <<<"$exported" || unknown="$unknown $name"
	done
	if [ -z "$unknown" ]; then
		pass "metric names: the $(wc -w <<<"$used") smtptrace_* names in the rules and dashboard are all exported"
	else
		fail "metric names not in the contract:$unknown"
	fi

	# Every outcome a matcher names (outcome="x", outcome!~"x|y") in the
	# rules, the dashboard and the tests must be exported: a matcher on a
	# name the milter does not export is silently empty.
	known=$(printf '%s\n' "${outcomes[@]}")
	matched=$(grep -ohP 'outcome(=|!=|=~|!~)\\?"\K[^"\\]+' "$rules" "$dashboard" "$tests" |
		tr '|' '\n' | sort -u)
	unknown=""
	for name in $matched; do
		grep -qxF "$name" <<<"$known" || unknown="$unknown $name"
	done
	if [ -z "$unknown" ]; then
		pass "outcome names: the $(wc -w <<<"$matched") outcomes matched in the rules, dashboard and tests are all exported"
	else
		fail "outcome names the milter does not export:$unknown"
	fi

	if (cd "$here" && promtool test rules "$(basename "$tests")") >"$tmp/out" 2>&1; then
		pass "promtool test rules $(basename "$tests") ($(grep -c '^  - interval:' "$tests") groups, $(grep -c 'alertname:' "$tests") alert checks)"
	else
		cat "$tmp/out"
		fail "promtool test rules $(basename "$tests")"
	fi
else
	echo "promtool not installed: skipped"
fi

# The list above follows milter/outcome.def (when this runs in the source
# tree): the OUTCOME_MILTER names, in the table's order.
if [ -r "$outcome_def" ]; then
	def_outcomes=$(grep -oP '^OUTCOME\([A-Z0-9_]+, "\K[a-z0-9-]+(?=", [^,]*, "[^"]*", OUTCOME_MILTER,)' "$outcome_def" | tr '\n' ' ')
	if [ "$def_outcomes" = "${outcomes[*]} " ]; then
		pass "outcomes: the ${#outcomes[@]} exported outcomes are the OUTCOME_MILTER rows of milter/outcome.def"
	else
		fail "outcomes: check.sh has '${outcomes[*]}', milter/outcome.def's OUTCOME_MILTER rows are '${def_outcomes% }'"
	fi
fi

json_ok=0
if "$python" -m json.tool "$dashboard" >/dev/null 2>"$tmp/out"; then
	pass "python3 -m json.tool $(basename "$dashboard")"
	json_ok=1
else
	cat "$tmp/out"
	fail "python3 -m json.tool $(basename "$dashboard")"
fi

# Panel ids unique, panels inside the 24-column grid and not overlapping,
# every query on the DS_PROMETHEUS data source, the instance variable.
if [ "$json_ok" -eq 0 ]; then
	echo "dashboard layout: not checked (invalid JSON)"
elif "$python" - "$dashboard" >"$tmp/out" 2>&1 <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
errors = []
panels = d["panels"] + [p for r in d["panels"] for p in r.get("panels", [])]
ids = [p["id"] for p in panels]
if len(ids) != len(set(ids)):
    errors.append("duplicate panel ids: %s" % sorted(i for i in set(ids) if ids.count(i) > 1))
if d.get("schemaVersion", 0) < 36:
    errors.append("schemaVersion %s < 36" % d.get("schemaVersion"))
boxes = []
for p in d["panels"]:
    g = p["gridPos"]
    if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or g["h"] < 1:
        errors.append("panel %d outside the grid: %s" % (p["id"], g))
    for q, h in boxes:
        if (g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"]
                and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]):
            errors.append("panels %d and %d overlap" % (q, p["id"]))
    boxes.append((p["id"], g))
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}" or not t.get("expr"):
            errors.append("panel %d: a target without expr or not on ${DS_PROMETHEUS}" % p["id"])
names = {v["name"]: v for v in d["templating"]["list"]}
if names.get("DS_PROMETHEUS", {}).get("type") != "datasource":
    errors.append("no DS_PROMETHEUS data source variable")
if "label_values(smtptrace_build_info, instance)" not in json.dumps(names.get("instance", {})):
    errors.append("no instance variable from label_values(smtptrace_build_info, instance)")
print("\n".join(errors) if errors else "%d panels" % len(panels))
sys.exit(1 if errors else 0)
EOF
	pass "dashboard layout: $(cat "$tmp/out"), unique ids, no overlap, all queries on \${DS_PROMETHEUS}"
else
	cat "$tmp/out"
	fail "dashboard layout"
fi

echo "prometheus: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
