/*
 * metrics.c and expose.c: what one transaction adds to each metric, the
 * histogram buckets, the exposition format line by line. (/transactions
 * and /recent: test_live.c.)
 */
#include <ctype.h>
#include <stdlib.h>

#include "expose.h"
#include "metrics.h"
#include "tests.h"

static char *
render(struct registry *reg)
{
	size_t len;
	char *text = expose_metrics(reg, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_EQUAL(strlen(text), len);
	return text;
}

/* The value of the sample line that starts with name_and_labels, or -1. */
static double
sample(const char *text, const char *name_and_labels)
{
	size_t n = strlen(name_and_labels);

	for (const char *line = text; *line; ) {
		if (strncmp(line, name_and_labels, n) == 0 && line[n] == ' ')
			return atof(line + n + 1);
		line += strcspn(line, "\n");
		if (*line == '\n')
			line++;
	}
	return -1;
}

static bool
name_ok(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
			return false;
	return true;
}

/* Text format 0.0.4, line by line: comments, then name{labels} value. */
/* For every histogram: cumulative buckets never decrease, +Inf equals _count. */
static void
check_histograms(const char *text)
{
	unsigned long last = 0;
	bool in_hist = false;

	for (const char *line = text; *line; ) {
		size_t len = strcspn(line, "\n");
		const char *le = strstr(line, "le=\"");
		if (le != NULL && le < line + len) {
			const char *close = memchr(le, '}', len);
			unsigned long v = close ? strtoul(close + 2, NULL, 10) : 0;
			CU_ASSERT(!in_hist || v >= last);
			last = v;
			in_hist = strncmp(le + 4, "+Inf", 4) != 0;
		} else if (memmem(line, len, "_count", 6) != NULL && strncmp(line, "#", 1) != 0) {
			const char *sp = memchr(line, ' ', len);
			CU_ASSERT(sp != NULL && strtoul(sp + 1, NULL, 10) == last);
			in_hist = false;
		}
		line += len + (line[len] == '\n');
	}
}

static void
check_format(const char *text)
{
	char typed[128] = "";
	char seen_types[64][128];
	int ntypes = 0;

	CU_ASSERT(text[strlen(text) - 1] == '\n');
	for (const char *line = text; *line; ) {
		size_t len = strcspn(line, "\n");
		if (strncmp(line, "# TYPE ", 7) == 0) {
			size_t nl = strcspn(line + 7, " ");
			CU_ASSERT(name_ok(line + 7, nl));
			snprintf(typed, sizeof typed, "%.*s", (int)nl, line + 7);
			for (int i = 0; i < ntypes; i++)
				CU_ASSERT(strcmp(seen_types[i], typed) != 0);	/* each family once */
			if (ntypes < 64)
				snprintf(seen_types[ntypes++], sizeof seen_types[0], "%s", typed);
		} else if (strncmp(line, "# HELP ", 7) != 0) {
			size_t nl = strcspn(line, "{ ");
			CU_ASSERT(name_ok(line, nl));
			/* every sample belongs to the family typed last */
			CU_ASSERT(typed[0] != '\0' && strncmp(line, typed, strlen(typed)) == 0);
			const char *value = memchr(line, ' ', len);
			if (line[nl] == '{') {
				const char *close = memchr(line, '}', len);
				CU_ASSERT_PTR_NOT_NULL(close);
				value = close ? close + 1 : value;
			}
			CU_ASSERT(value != NULL && *value == ' ');
			if (value != NULL) {
				char *end;
				strtod(value + 1, &end);
				CU_ASSERT(end == line + len);
			}
		}
		line += len + (line[len] == '\n');
	}
	check_histograms(text);
}

/* A value on a bound falls in that bucket (le is inclusive). */
static void
test_bucket_bounds(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	metrics_reset();
	txn_begin(s, "<a@b>", NULL, 0);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 10);	/* rcpt: exactly 0.01 s */
	txn_data(&s->txn, 20);
	txn_body(&s->txn, 1012, 30);			/* 1012 + 0 + ... */
	txn_header(&s->txn, "", "", "X", 30);		/* +4: exactly 1024 bytes */
	metrics_transaction(s, OUTCOME_ABORTED_IN_CONTENT);
	char *text = render(NULL);
	check_format(text);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_bucket{phase=\"rcpt\",le=\"0.005\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_bucket{phase=\"rcpt\",le=\"0.01\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_upload_bytes_bucket{le=\"1024\"}") == 1);
	free(text);
	session_free(s);
	metrics_reset();
}

static void
test_one_transaction(void)
{
	struct session *s = session_create("0123456789abcdef", 1000);

	metrics_reset();
	metrics_connection_open();
	session_connect(s, "c", "192.0.2.1", 1, 1000);
	session_helo(s, "h", 1012);
	txn_begin(s, "<a@b>", NULL, 1031);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 1045);
	txn_data(&s->txn, 1060);
	txn_header(&s->txn, "Subject", "x", "X-SMTP-Trace", 3280);	/* upload 2.22 s */
	txn_body(&s->txn, 100000, 3281);
	txn_mark(&s->txn, PHASE_EOM, 3301);
	metrics_transaction(s, OUTCOME_ACCEPTED);
	metrics_rejected("5.7.1");
	metrics_rejected("5.7.1");
	metrics_rejected("4.2.2");
	metrics_rejected("5.9.9");
	metrics_rejected("junk");

	char *text = render(NULL);
	check_format(text);
	CU_ASSERT(sample(text, "smtptrace_connections_open") == 1);
	CU_ASSERT(sample(text, "smtptrace_connections_total") == 1);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"accepted\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"timeout-after-354\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"no-valid-recipients\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"ended-after-354\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"refused-after-354\"}") == 0);
	/* outcomes only the MTA's log tells are no label of the milter's */
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"abandoned-after-354\"}") == -1);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"discarded\"}") == -1);
	CU_ASSERT(sample(text, "smtptrace_rejected_recipients_total{enhanced=\"5.7.1\"}") == 2);
	CU_ASSERT(sample(text, "smtptrace_rejected_recipients_total{enhanced=\"4.2.2\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_rejected_recipients_total{enhanced=\"other\"}") == 2);
	CU_ASSERT(sample(text, "smtptrace_stalls_total") == 0);
	/* upload 2.22 s: not in le=1, in le=2.5 and above (cumulative) */
	CU_ASSERT(sample(text, "smtptrace_upload_seconds_bucket{le=\"1\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_upload_seconds_bucket{le=\"2.5\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_upload_seconds_bucket{le=\"+Inf\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_upload_seconds_count") == 1);
	double sum = sample(text, "smtptrace_upload_seconds_sum");
	CU_ASSERT(sum > 2.2199 && sum < 2.2201);
	/* 100,000 + 12 bytes: over 65536, within 262144 */
	CU_ASSERT(sample(text, "smtptrace_upload_bytes_bucket{le=\"65536\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_upload_bytes_bucket{le=\"262144\"}") == 1);
	/* every bound written in full */
	CU_ASSERT(sample(text, "smtptrace_upload_bytes_bucket{le=\"67108864\"}") == 1);
	CU_ASSERT_PTR_NULL(strstr(text, "e+0"));
	/* the phases: helo 12 ms, mail 19, rcpt 14, data 15, upload 2220, content 21 */
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_bucket{phase=\"helo\",le=\"0.01\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_bucket{phase=\"helo\",le=\"0.025\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_count{phase=\"upload\"}") == 1);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_count{phase=\"content\"}") == 1);
	double content = sample(text, "smtptrace_phase_duration_seconds_sum{phase=\"content\"}");
	CU_ASSERT(content > 0.0209 && content < 0.0211);
	CU_ASSERT(sample(text, "smtptrace_degraded_total{kind=\"no-memory\"}") >= 0);
	free(text);

	metrics_connection_close();
	text = render(NULL);
	CU_ASSERT(sample(text, "smtptrace_connections_open") == 0);
	free(text);
	session_free(s);
	metrics_reset();
}

/*
 * A second transaction on the connection: no helo observation; "mail"
 * runs from the end of the first transaction, not from the HELO.
 */
static void
test_second_transaction_phases(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	metrics_reset();
	session_helo(s, "h", 10);
	txn_begin(s, "<a@b>", NULL, 20);
	txn_end(s, 4950);
	txn_begin(s, "<a@b>", NULL, 5000);
	metrics_transaction(s, OUTCOME_ABORTED_BEFORE_DATA);
	char *text = render(NULL);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_count{phase=\"helo\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_count{phase=\"mail\"}") == 1);
	double mail = sample(text, "smtptrace_phase_duration_seconds_sum{phase=\"mail\"}");
	CU_ASSERT(mail > 0.0499 && mail < 0.0501);
	CU_ASSERT(sample(text, "smtptrace_phase_duration_seconds_count{phase=\"upload\"}") == 0);
	CU_ASSERT(sample(text, "smtptrace_upload_seconds_count") == 0);
	CU_ASSERT(sample(text, "smtptrace_transactions_total{outcome=\"aborted-before-data\"}") == 1);
	free(text);
	session_free(s);
	metrics_reset();
}

static void
test_gauges_from_registry(void)
{
	struct registry reg;
	struct stall_entry a, b;
	struct stall_view out[2];

	metrics_reset();
	registry_init(&reg, 1000, 0);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	registry_add(&reg, &a, 0);
	registry_add(&reg, &b, 500);
	registry_due(&reg, 1200, out, 2);
	char *text = render(&reg);
	CU_ASSERT(sample(text, "smtptrace_transactions_in_data") == 2);
	CU_ASSERT(sample(text, "smtptrace_transactions_stalled") == 1);
	CU_ASSERT(sample(text, "smtptrace_stalls_total") == 1);
	free(text);
	registry_due(&reg, 1600, out, 2);	/* b: the second stall; a: warned once only */
	text = render(&reg);
	CU_ASSERT(sample(text, "smtptrace_stalls_total") == 2);
	free(text);
	registry_remove(&reg, &a);
	registry_remove(&reg, &b);
	registry_destroy(&reg);
}

int
suite_metrics(void)
{
	CU_pSuite s = CU_add_suite("metrics and exposition", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "one transaction in every metric", test_one_transaction) ||
	       !CU_add_test(s, "second transaction: phases", test_second_transaction_phases) ||
	       !CU_add_test(s, "values on a bucket bound", test_bucket_bounds) ||
	       !CU_add_test(s, "gauges from the registry", test_gauges_from_registry);
}
