/*
 * smtptrace-top's pure parts: safe strings, the three documents, rates
 * and quantiles (also from the milter's own metrics.c output), the keys,
 * the layout and the --once text, the URL. Tables of cases; I/O-free.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "metrics.h"
#include "outcome.h"
#include "session.h"
#include "sbuf.h"
#include "tests.h"
#include "top_conf.h"
#include "top_layout.h"
#include "top_model.h"
#include "top_prom.h"
#include "top_rates.h"
#include "top_state.h"
#include "top_str.h"
#include "top_text.h"
#include "version.h"

#define COUNT(a)	(sizeof (a) / sizeof (a)[0])

/* ---- top_str ------------------------------------------------------------ */

static void
test_fit_table(void)
{
	static const struct {
		const char *in;
		int cols, flags;
		const char *want;
	} cases[] = {
		{ "mx.example", 20, 0, "mx.example" },
		{ "mx.example", 20, TOP_PAD, "mx.example          " },
		{ "mx.example", 10, 0, "mx.example" },
		{ "mx.example", 9, 0, "mx.exa..." },
		{ "mx.example", 3, 0, "..." },
		{ "mx.example", 2, 0, ".." },
		{ "mx", 0, 0, "" },
		{ NULL, 5, 0, "-" },
		{ "", 3, TOP_PAD, "   " },
		{ "a\x1b[2Jb", 20, 0, "a?[2Jb" },		/* ESC */
		{ "a\tb\r\n\x7f", 20, 0, "a?b???" },		/* C0, DEL */
		{ "caf\xc3\xa9", 20, 0, "caf\xc3\xa9" },	/* é kept */
		{ "caf\xc3\xa9", 20, TOP_ASCII, "caf?" },
		{ "\xc2\x9b" "31m", 20, 0, "?31m" },		/* C1 CSI */
		{ "\xe2\x80\xae" "abc", 20, 0, "?abc" },	/* RLO */
		{ "\xe2\x80\x8b", 20, 0, "?" },			/* zero width space */
		{ "\xff\xfe", 20, 0, "??" },			/* never UTF-8 */
		{ "\xc0\xaf", 20, 0, "??" },			/* overlong "/" */
		{ "\xe0\x80\xaf", 20, 0, "?" },			/* overlong, 3 bytes */
		{ "\xed\xa0\x80", 20, 0, "?" },			/* a surrogate */
		{ "\xf4\x90\x80\x80", 20, 0, "?" },		/* past U+10FFFF */
		{ "\xe6\x97\xa5", 20, 0, "\xe6\x97\xa5" },	/* 日: two columns */
		{ "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5", 5, 0, "\xe6\x97\xa5..." },
		{ "\xe6\x97\xa5\xe6\x97\xa5", 3, TOP_PAD, "..." },
		{ "ab\xe6\x97\xa5\xe6\x97\xa5x", 6, TOP_PAD, "ab... " },	/* 日 not split */
		{ "ab\xe6\x97\xa5", 4, 0, "ab\xe6\x97\xa5" },
		{ "abc\xc3", 20, 0, "abc?" },			/* cut short */
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		char buf[256];
		struct sbuf sb;
		sbuf_init(&sb, buf, sizeof buf);
		int cols = top_fit(&sb, cases[i].in, cases[i].cols, cases[i].flags);
		EXPECT_STR(buf, cases[i].want);
		if (cols > cases[i].cols)
			fprintf(stderr, "\ncase %zu: %d columns, at most %d\n", i, cols, cases[i].cols);
		CU_ASSERT(cols <= cases[i].cols);
	}
	EXPECT_INT(top_width("\xe6\x97\xa5x", 0), 3);
	EXPECT_INT(top_width("\xe6\x97\xa5x", TOP_ASCII), 2);
}

/* Every byte value, alone and after a lead byte: nothing below 0x20, no DEL, no C1. */
static void
test_fit_every_byte(void)
{
	for (int b = 1; b < 256; b++) {
		for (int lead = 0; lead < 3; lead++) {
			static const char *const leads[] = { "", "\xc2", "\xe2\x80" };
			char in[8], out[64];
			struct sbuf sb;
			snprintf(in, sizeof in, "%s%c", leads[lead], b);
			sbuf_init(&sb, out, sizeof out);
			top_fit(&sb, in, 10, 0);
			for (const unsigned char *p = (const unsigned char *)out; *p; p++)
				CU_ASSERT(*p >= 0x20 && *p != 0x7f);
			CU_ASSERT(strstr(out, "\xc2\x80") == NULL && strstr(out, "\xc2\x9b") == NULL);
		}
	}
}

static void
test_strndup(void)
{
	char *s = top_strndup("a\0b", 3, 10);
	EXPECT_STR(s, "a\x7f" "b");
	free(s);
	s = top_strndup("abcdefghij", 10, 6);
	EXPECT_STR(s, "abc...");
	free(s);
	s = top_strndup("ab\xc3\xa9" "cdef", 8, 7);	/* "...": not after half an é */
	EXPECT_STR(s, "ab...");
	free(s);
}

/* ---- top_model ---------------------------------------------------------- */

static const char TXNS[] =
	"{\"now_ms\":5000,\"version\":\"0.1.0\",\"uptime_s\":3725,\"stall_warn_after_s\":20,"
	"\"open\":3,\"in_data\":1,\"stalled\":1,\"transactions\":["
	"{\"session\":\"00000000000000a1\",\"txn\":2,\"phase\":\"data\",\"seconds_in_phase\":42.5,"
	"\"seconds_connected\":50,\"client\":\"slow[192.0.2.1]:25\",\"helo\":\"slow\","
	"\"from\":\"a@slow\",\"rcpt\":2,\"rcpt_rejected\":1,\"queue_id\":\"4Q1\",\"tls\":null,"
	"\"stalled\":true,\"warnings\":3},"
	"{\"session\":\"00000000000000a2\",\"txn\":1,\"phase\":\"helo\",\"seconds_in_phase\":-4,"
	"\"seconds_connected\":1e300,\"client\":\"n\\u0000ul\",\"helo\":null,\"from\":null,"
	"\"rcpt\":0,\"rcpt_rejected\":0,\"queue_id\":null,\"tls\":\"TLSv1.3\",\"stalled\":false,"
	"\"warnings\":0,\"unknown\":{\"x\":[1]}}],\"count\":2,\"truncated\":false}";

static void
test_transactions_good(void)
{
	struct top_transactions t;
	char err[256] = "";

	EXPECT_INT(top_transactions_parse(TXNS, strlen(TXNS), &t, err, sizeof err), 0);
	EXPECT_STR(err, "");
	EXPECT_INT(t.n, 2);
	EXPECT_INT(t.uptime_s, 3725);
	EXPECT_INT(t.stall_warn_after_s, 20);
	EXPECT_INT(t.open, 3);
	EXPECT_STR(t.version, "0.1.0");
	EXPECT_STR(t.rows[0].client, "slow[192.0.2.1]:25");
	EXPECT_STR(t.rows[0].phase, "data");
	CU_ASSERT(t.rows[0].in_phase_s == 42.5 && t.rows[0].stalled);
	EXPECT_INT(t.rows[0].rcpt_rejected, 1);
	EXPECT_INT(t.rows[0].warnings, 3);
	CU_ASSERT_PTR_NULL(t.rows[0].tls);
	CU_ASSERT(t.rows[1].in_phase_s == 0);			/* negative: clamped */
	CU_ASSERT(t.rows[1].connected_s == 1e12);		/* absurd: clamped */
	EXPECT_STR(t.rows[1].client, "n\x7ful");		/* NUL kept as DEL */
	CU_ASSERT_PTR_NULL(t.rows[1].helo);
	CU_ASSERT_PTR_NULL(t.rows[1].from);
	top_transactions_free(&t);
	top_transactions_free(&t);				/* twice is fine */
}

static void
test_transactions_minimal(void)
{
	static const char doc[] = "{\"transactions\":[{\"session\":\"s\",\"phase\":\"data\","
				  "\"seconds_in_phase\":1}]}";
	struct top_transactions t;
	char err[128];

	EXPECT_INT(top_transactions_parse(doc, strlen(doc), &t, err, sizeof err), 0);
	EXPECT_INT(t.uptime_s, -1);
	EXPECT_INT(t.open, -1);
	CU_ASSERT_PTR_NULL(t.version);
	CU_ASSERT(t.rows[0].connected_s == -1);
	EXPECT_INT(t.rows[0].rcpt, -1);
	top_transactions_free(&t);
}

static void
test_documents_refused(void)
{
	static const struct {
		const char *doc;
		int recent;
		const char *want;
	} cases[] = {
		{ "", 0, "an empty response" },
		{ "  \n", 0, "an empty response" },
		{ "<!DOCTYPE html><html>", 0, "HTML" },
		{ " <?xml version=\"1.0\"?>", 1, "HTML or XML" },
		{ "{\"transactions\":[", 0, "broken JSON: it ends too early" },
		{ "{\"transactions\":[]} x", 0, "something after the document" },
		{ "{\"transactions\":[]}{}", 0, "something after the document" },
		{ "nul", 0, "broken JSON" },
		{ "\"just a string\"", 0, "JSON, but a string" },
		{ "{}", 0, "JSON without \"transactions\"" },
		{ "{\"transactions\":null}", 0, "JSON without \"transactions\"" },
		{ "{\"transactions\":\"x\"}", 0, "\"transactions\" is a string, want an array" },
		{ "{\"transactions\":[[]]}", 0, "transactions[0] is an array, want an object" },
		{ "{\"transactions\":[{\"phase\":\"data\",\"seconds_in_phase\":1}]}", 0,
		  "no \"session\" in transactions[0]." },
		{ "{\"transactions\":[{\"session\":1,\"phase\":\"data\",\"seconds_in_phase\":1}]}", 0,
		  "transactions[0].session is a number, want a string" },
		{ "{\"transactions\":[{\"session\":\"s\",\"phase\":\"data\",\"seconds_in_phase\":\"1\"}]}",
		  0, "transactions[0].seconds_in_phase is a string, want a number" },
		{ "{\"transactions\":[{\"session\":\"s\",\"phase\":\"data\",\"seconds_in_phase\":1,"
		  "\"stalled\":1}]}", 0, "transactions[0].stalled is a number, want a boolean" },
		{ "{\"transactions\":[],\"version\":7}", 0, "version is a number, want a string" },
		{ "{\"recent\":[{\"client\":\"c\"}]}", 1, "no \"outcome\" in recent[0]." },
		{ "{\"recent\":{}}", 1, "\"recent\" is an object, want an array" },
		{ "{\"transactions\":[]}", 1, "JSON without \"recent\"" },
		{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
		  0, "broken JSON: nesting too deep" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		char err[256] = "";
		int rc;
		if (cases[i].recent) {
			struct top_recent r;
			rc = top_recent_parse(cases[i].doc, strlen(cases[i].doc), &r, err, sizeof err);
			CU_ASSERT(r.rows == NULL && r.n == 0);
		} else {
			struct top_transactions t;
			rc = top_transactions_parse(cases[i].doc, strlen(cases[i].doc), &t, err,
						    sizeof err);
			CU_ASSERT(t.rows == NULL && t.n == 0 && t.version == NULL);
		}
		EXPECT_INT(rc, -1);
		EXPECT_CONTAINS(err, cases[i].want);
	}
}

static void
test_recent_good(void)
{
	static const char doc[] =
		"{\"now_ms\":1,\"size\":1000,\"recent\":[{\"session\":\"b1\",\"txn\":1,"
		"\"queue_id\":null,\"client\":\"c[192.0.2.9]:1\",\"helo\":null,\"from\":\"f@x\","
		"\"outcome\":\"timeout-after-354\",\"reply\":\"421 4.4.2\",\"upload_ms\":null,"
		"\"duration_ms\":300000,\"ended_ms_ago\":65000,\"end_time\":\"2026-12-01T22:21:29Z\"}],"
		"\"count\":1}";
	struct top_recent r;
	char err[128];

	EXPECT_INT(top_recent_parse(doc, strlen(doc), &r, err, sizeof err), 0);
	EXPECT_INT(r.size, 1000);
	EXPECT_INT(r.n, 1);
	EXPECT_STR(r.rows[0].outcome, "timeout-after-354");
	EXPECT_STR(r.rows[0].reply, "421 4.4.2");
	EXPECT_INT(r.rows[0].upload_ms, -1);
	EXPECT_INT(r.rows[0].duration_ms, 300000);
	EXPECT_INT(r.rows[0].ended_ms_ago, 65000);
	CU_ASSERT_PTR_NULL(r.rows[0].queue_id);
	top_recent_free(&r);
}

/* A value past TOP_STR_MAX is kept cut, ending in "...". */
static void
test_long_string_cut(void)
{
	size_t n = 3 * TOP_STR_MAX;
	char *doc = malloc(n + 200);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	int at = snprintf(doc, 200, "{\"transactions\":[{\"session\":\"s\",\"phase\":\"data\","
			  "\"seconds_in_phase\":1,\"helo\":\"");
	memset(doc + at, 'h', n);
	memcpy(doc + at + n, "\"}]}", 5);
	struct top_transactions t;
	char err[128];
	EXPECT_INT(top_transactions_parse(doc, strlen(doc), &t, err, sizeof err), 0);
	EXPECT_INT(strlen(t.rows[0].helo), TOP_STR_MAX);
	EXPECT_CONTAINS(t.rows[0].helo + TOP_STR_MAX - 4, "h...");
	top_transactions_free(&t);
	free(doc);
}

/* ---- top_prom and top_rates ----------------------------------------------- */

static void
test_metrics_parse(void)
{
	static const char text[] =
		"# HELP smtptrace_build_info v\n# TYPE smtptrace_build_info gauge\n"
		"smtptrace_build_info{version=\"0.\\\"9\\\\\"} 1\n"
		"smtptrace_connections_open 4 1700000000000\n"
		"smtptrace_transactions_total{outcome=\"accepted\"} 1e3\n"
		"smtptrace_transactions_total{x=\"a,b}\",outcome=\"ended-after-354\"} 2\n"
		"smtptrace_upload_seconds_bucket{le=\"+Inf\"} 9\n"
		"smtptrace_upload_seconds_bucket{le=\"1\"} 5\n"
		"smtptrace_upload_seconds_bucket{le=\"0.5\"} 2\n"
		"smtptrace_upload_seconds_bucket{le=\"junk\"} 2\n"
		"smtptrace_transactions_in_data NaN\n"
		"garbage line {{{\n"
		"smtptrace_transactions_stalled";		/* cut short: skipped */
	struct top_metrics m;
	char err[128];

	EXPECT_INT(top_metrics_parse(text, strlen(text), &m, err, sizeof err), 0);
	EXPECT_STR(m.version, "0.\"9\\");
	CU_ASSERT(m.open == 4);
	CU_ASSERT(isnan(m.in_data) && isnan(m.stalled));
	EXPECT_INT(m.noutcomes, 2);
	EXPECT_STR(m.outcomes[1].name, "ended-after-354");
	CU_ASSERT(m.outcomes[0].total == 1000);
	EXPECT_INT(m.nbuckets, 3);			/* sorted, "junk" dropped */
	CU_ASSERT(m.upload[0].le == 0.5 && m.upload[1].le == 1 && isinf(m.upload[2].le));
	EXPECT_INT(top_metrics_parse("<html>", 6, &m, err, sizeof err), -1);
	EXPECT_CONTAINS(err, "HTML");
	EXPECT_INT(top_metrics_parse("up 1\n# smtptrace_x 1\n", 21, &m, err, sizeof err), -1);
	EXPECT_CONTAINS(err, "no smtptrace_ metric");
}

/* Cumulative buckets; values checked against Prometheus' histogram_quantile(). */
static void
test_quantile_table(void)
{
	static const struct top_bucket b1[] = {
		{ 0.5, 0 }, { 1, 100 }, { 2.5, 100 }, { INFINITY, 100 } };
	static const struct top_bucket b2[] = {
		{ 1, 10 }, { 2, 20 }, { 4, 40 }, { INFINITY, 40 } };
	static const struct top_bucket b3[] = { { 1, 0 }, { 5, 0 }, { INFINITY, 8 } };
	static const struct top_bucket b4[] = { { 1, 0 }, { INFINITY, 0 } };
	static const struct top_bucket b5[] = { { 1, 4 }, { 2, 2 }, { INFINITY, 4 } };
	static const struct top_bucket b6[] = { { 1, 4 }, { 2, 8 } };
	static const struct {
		const struct top_bucket *b;
		size_t n;
		double q, want;
	} cases[] = {
		{ b1, 4, 0.5, 0.75 }, { b1, 4, 0.95, 0.975 }, { b1, 4, 1, 1 },
		{ b2, 4, 0.25, 1 }, { b2, 4, 0.5, 2 }, { b2, 4, 0.1, 0.4 }, { b2, 4, 0.75, 3 },
		{ b3, 3, 0.5, 5 },		/* in +Inf: the highest finite bound */
		{ b4, 2, 0.5, NAN },		/* no observations */
		{ b5, 3, 0.5, 0.5 },		/* not monotonic: raised, as Prometheus does */
		{ b6, 2, 0.5, NAN },		/* no +Inf bucket */
		{ b1, 1, 0.5, NAN },		/* one bucket */
		{ b1, 4, -1, -INFINITY }, { b1, 4, 2, INFINITY }, { b1, 4, NAN, NAN },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		double got = top_histogram_quantile(cases[i].q, cases[i].b, cases[i].n);
		bool ok = isnan(cases[i].want) ? isnan(got) :
			  isinf(cases[i].want) ? got == cases[i].want :
			  fabs(got - cases[i].want) < 1e-9;
		if (!ok)
			fprintf(stderr, "\nquantile case %zu: got %g, want %g\n", i, got, cases[i].want);
		CU_ASSERT(ok);
	}
}

static struct top_metrics
parse_ok(const char *text)
{
	struct top_metrics m;
	char err[128] = "";

	EXPECT_INT(top_metrics_parse(text, strlen(text), &m, err, sizeof err), 0);
	EXPECT_STR(err, "");
	return m;
}

static char *
milter_metrics(void)
{
	char *buf = malloc(256 * 1024);
	struct sbuf sb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	sbuf_init(&sb, buf, 256 * 1024);
	metrics_render(&sb, NULL);
	CU_ASSERT_FALSE(sb.overflow);
	return buf;
}

/* The milter's own /metrics (metrics.c) before and after one transaction. */
static void
test_rates_from_milter_metrics(void)
{
	metrics_reset();
	char *text = milter_metrics();
	struct top_metrics before = parse_ok(text);
	free(text);
	EXPECT_STR(before.version, SMTPTRACE_VERSION);
	EXPECT_INT(before.nbuckets, 17);
	int milter_outcomes = 0;
	for (int o = 0; o < OUTCOME__COUNT; o++)
		milter_outcomes += outcome_scope((enum outcome)o) == OUTCOME_MILTER;
	EXPECT_INT(before.noutcomes, milter_outcomes);

	struct session *s = session_create("0123456789abcdef", 1000);
	metrics_connection_open();
	session_connect(s, "c", "192.0.2.1", 1, 1000);
	txn_begin(s, "<a@b>", NULL, 1031);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 1045);
	txn_data(&s->txn, 1060);
	txn_header(&s->txn, "Subject", "x", "X-SMTP-Trace", 3280);	/* upload 2.22 s */
	txn_mark(&s->txn, PHASE_EOM, 3301);
	metrics_transaction(s, OUTCOME_ACCEPTED);
	session_free(s);
	text = milter_metrics();
	struct top_metrics after = parse_ok(text);
	free(text);
	metrics_reset();

	CU_ASSERT(after.open == 1 && after.in_data == 0 && after.stalled == 0);
	struct top_rates r;
	top_rates_compute(&before, &after, 2.0, &r);
	CU_ASSERT(r.valid);
	CU_ASSERT(r.total_per_s == 0.5);
	for (size_t i = 0; i < r.n; i++)
		CU_ASSERT(r.rates[i].per_s == (strcmp(r.rates[i].name, "accepted") == 0 ? 0.5 : 0));
	CU_ASSERT(r.uploads == 1);
	/* one upload in (1, 2.5]: 1 + 1.5 * 0.5 and 1 + 1.5 * 0.95 */
	CU_ASSERT(fabs(r.p50 - 1.75) < 1e-9 && fabs(r.p95 - 2.425) < 1e-9);

	top_rates_compute(&after, &before, 2.0, &r);	/* went down: a restart */
	CU_ASSERT(r.total_per_s == 0 && r.uploads == 0 && isnan(r.p50));
	top_rates_compute(&before, &after, 0, &r);
	CU_ASSERT_FALSE(r.valid);
}

static void
ignore_line(void *arg, const char *line)
{
	(void)arg, (void)line;
}

/* Found by fuzzing (UBSan): +Inf and 1e62 reached a conversion to long long. */
static void
test_absurd_numbers(void)
{
	static const char *const texts[] = {
		"smtptrace_upload_seconds_bucket{le=\"0\"} 2\n"
		"smtptrace_upload_seconds_bucket{le=\"+Inf\"} 3\n"
		"smtptrace_upload_seconds_bucket{le=\"0\"} 2\n"
		"smtptrace_upload_seconds_bucket{le=\"+Inf\"} 3\n",
		"smtptrace_connections_open 1.55556e+62\nsmtptrace_transactions_stalled +Inf\n"
		"smtptrace_transactions_in_data -Inf\n"
		"smtptrace_transactions_total{outcome=\"accepted\"} 1e308\n",
	};
	struct top_metrics zero;

	memset(&zero, 0, sizeof zero);
	for (size_t i = 0; i < COUNT(texts); i++) {
		struct top_metrics m = parse_ok(texts[i]);
		struct top_rates r;
		top_rates_compute(&zero, &m, 1e-300, &r);
		struct top_scene sc = { .url = "u", .metrics = &m, .rates = &r, .interval_s = 2 };
		top_text_once(&sc, 80, ignore_line, NULL);	/* no UB under -fsanitize=undefined */
	}
}

/* ---- top_state ---------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static struct top_session
row(const char *sid, const char *phase, double in_phase, double connected, const char *client,
    const char *from)
{
	struct top_session s = { .session = strdup(sid), .phase = strdup(phase),
				 .in_phase_s = in_phase, .connected_s = connected,
				 .client = strdup(client), .from = dup_or_null(from) };
	return s;
}

static void
test_keys_and_select(void)
{
	struct top_session rows[] = {
		row("s1", "rcpt", 7, 8, "b.example", "x@one"),
		row("s2", "data", 40, 41, "c.example", "y@two"),
		row("s3", "helo", 1, 100, "a.example", NULL),
		row("s4", "content", 7, 9, "d.example", "Z@Two"),
	};
	static const struct {
		const char *keys;
		const char *want;	/* the sessions shown, in order */
	} cases[] = {
		{ "", "s2 s1 s4 s3" },			/* time in phase; ties by session */
		{ "s", "s3 s2 s4 s1" },			/* time connected */
		{ "ss", "s3 s1 s2 s4" },		/* client */
		{ "sss", "s2 s1 s4 s3" },		/* and round */
		{ "d", "s2 s4" },			/* data and content */
		{ "dd", "s2 s1 s4 s3" },
		{ "/two\n", "s2 s4" },			/* sender, case ignored */
		{ "/A.EX\n", "s3" },			/* client */
		{ "/two\x1b", "s2 s1 s4 s3" },		/* Esc: not applied */
		{ "/twx\x7fo\n", "s2 s4" },		/* backspace */
		{ "/two\n/\x15\n", "s2 s1 s4 s3" },	/* Ctrl-U: cleared */
		{ "/nothing\n", "" },
		{ "?s", "s2 s1 s4 s3" },		/* a key closes the help, nothing else */
		{ "pxyz", "s2 s1 s4 s3" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		struct top_state st;
		size_t idx[COUNT(rows)];
		char got[64];
		struct sbuf sb;
		top_state_init(&st);
		for (const char *k = cases[i].keys; *k; k++)
			CU_ASSERT(top_state_key(&st, (unsigned char)*k) != TOP_ACT_QUIT);
		size_t n = top_select(&st, rows, COUNT(rows), idx);
		sbuf_init(&sb, got, sizeof got);
		for (size_t j = 0; j < n; j++)
			sbuf_printf(&sb, "%s%s", j ? " " : "", rows[idx[j]].session);
		EXPECT_STR(got, cases[i].want);
	}
	for (size_t i = 0; i < COUNT(rows); i++) {
		free(rows[i].session), free(rows[i].phase), free(rows[i].client), free(rows[i].from);
	}
	struct top_state st;
	top_state_init(&st);
	EXPECT_INT(top_state_key(&st, 'q'), TOP_ACT_QUIT);
	EXPECT_INT(top_state_key(&st, '?'), TOP_ACT_REDRAW);
	EXPECT_INT(top_state_key(&st, 'q'), TOP_ACT_QUIT);	/* also from the help */
	top_state_key(&st, 'x');
	top_state_key(&st, '/');
	EXPECT_INT(top_state_key(&st, 'q'), TOP_ACT_REDRAW);	/* a letter in the prompt */
	EXPECT_STR(st.prompt, "q");
	for (int i = 0; i < 300; i++)
		top_state_key(&st, 'a');
	EXPECT_INT(strlen(st.prompt), TOP_FILTER_MAX - 1);
	top_state_key(&st, 'p');
	EXPECT_INT(st.paused, 0);				/* still the prompt */
}

/* ---- top_layout and top_text ---------------------------------------------- */

static void
test_layout_fits(void)
{
	static const int widths[] = { 80, 99, 100, 110, 120, 140, 200, 400, 1000 };

	for (size_t i = 0; i < COUNT(widths); i++) {
		struct top_cols c;
		top_layout(widths[i], &c);
		int table = 2 + c.client + 1 + c.helo + 1 + c.from + 1 + c.phase + 1 + c.in_phase +
			    1 + (c.connected ? c.connected + 1 : 0) + c.bar;
		int recent = c.ago + 1 + c.outcome + 1 + c.reply + 1 + c.upload + 1 +
			     (c.queue_id ? c.queue_id + 1 : 0) + c.r_client + 1 + c.r_from;
		CU_ASSERT(table <= widths[i] && recent <= widths[i]);
		CU_ASSERT(widths[i] > 300 || (table == widths[i] && recent == widths[i]));
		EXPECT_INT(c.bar_at + c.bar, table);
		CU_ASSERT((c.connected != 0) == (widths[i] >= 100));
	}
	static const struct {
		int lines;
		size_t sessions, recent;
		int table, rows;
	} panes[] = {
		{ 20, 3, 50, 3, 15 }, { 20, 100, 50, 12, 6 }, { 20, 100, 2, 16, 2 },
		{ 20, 0, 0, 1, 17 }, { 40, 100, 100, 26, 12 }, { 2, 5, 5, 0, 0 },
	};
	for (size_t i = 0; i < COUNT(panes); i++) {
		struct top_panes p;
		top_panes(panes[i].lines, panes[i].sessions, panes[i].recent, &p);
		EXPECT_INT(p.table_rows, panes[i].table);
		EXPECT_INT(p.recent_rows, panes[i].rows);
	}
}

static void
test_duration_bar_colour(void)
{
	static const struct {
		double s;
		const char *want;
	} d[] = {
		{ 0, "0.0s" }, { 4.25, "4.2s" }, { 99.9, "99.9s" }, { 512, "512s" },
		{ 847, "847s" }, { 1000, "16m40s" }, { 5999, "99m59s" }, { 10920, "3h02m" },
		{ 1054800, "12d05h" }, { -1, "-" }, { NAN, "-" }, { INFINITY, "11574074d01h" },
	};
	for (size_t i = 0; i < COUNT(d); i++) {
		char buf[32];
		struct sbuf sb;
		sbuf_init(&sb, buf, sizeof buf);
		top_duration(&sb, d[i].s);
		EXPECT_STR(buf, d[i].want);
	}
	static const struct {
		double s, scale;
		int width;
		const char *want;
	} b[] = {
		{ 0, 30, 12, "[..........]" }, { 15, 30, 12, "[#####.....]" },
		{ 30, 30, 12, "[##########]" }, { 300, 30, 12, "[##########]" },
		{ 1, 0, 6, "[....]" }, { 1, 30, 2, "[]" }, { 1, 30, 1, "" },
	};
	for (size_t i = 0; i < COUNT(b); i++) {
		char buf[64];
		struct sbuf sb;
		sbuf_init(&sb, buf, sizeof buf);
		top_bar(&sb, b[i].s, b[i].scale, b[i].width);
		EXPECT_STR(buf, b[i].want);
	}
	/* every outcome the milter or the log names (outcome.def) */
#define OUTCOME(id, name, code, enh, scope, seen, verdict) { name, #id },
	static const struct { const char *name, *id; } outcomes[] = {
#include "outcome.def"
	};
#undef OUTCOME
	for (size_t i = 0; i < COUNT(outcomes); i++) {
		const char *n = outcomes[i].name;
		enum top_colour want = strcmp(n, "accepted") == 0 ? TOP_COLOUR_GREEN :
			strncmp(n, "refused", 7) == 0 || strcmp(n, "discarded") == 0 ? TOP_COLOUR_YELLOW :
			strncmp(n, "ended", 5) == 0 || strncmp(n, "abandoned", 9) == 0 ||
			strncmp(n, "timeout", 7) == 0 ? TOP_COLOUR_RED : TOP_COLOUR_NONE;
		EXPECT_INT(top_outcome_colour(n), want);
	}
	EXPECT_INT(top_outcome_colour("aborted-in-content"), TOP_COLOUR_NONE);
	EXPECT_INT(top_outcome_colour("timeout-after-354"), TOP_COLOUR_RED);
	EXPECT_INT(top_outcome_colour(NULL), TOP_COLOUR_NONE);
}

static void
collect(void *arg, const char *line)
{
	struct sbuf *sb = arg;

	sbuf_puts(sb, line);
	sbuf_putc(sb, '\n');
}

/* The whole --once snapshot of a fixed scene at 80 columns. */
static void
test_once_golden(void)
{
	static const char want[] =
		"smtptrace-top  http://127.0.0.1:9754  milter 0.1.0  up 01:02:05  every 2s\n"
		"sessions 3, in DATA 1, stalled 1   1 upload in 2.0s: p50 1.8s p95 2.4s\n"
		"ended per second over 2.0s: 0.50 (accepted 0.50)\n"
		"\n"
		"SESSIONS IN FLIGHT: 2, longest in phase first; ! = stalled (past 20s)\n"
		"  CLIENT               HELO      FROM              PHASE   IN PHASE 0-20s\n"
		"! slow[192.0.2.1]:25   slow      a@slow            data       42.5s [##########]\n"
		"  n?ul                 -         -                 helo        0.0s [..........]\n"
		"\n"
		"RECENT ENDINGS, newest first\n"
		"   AGO ENDED AS            REPLY      UPLOAD CLIENT             FROM\n"
		"  (this milter serves no /recent)\n";
	struct top_transactions t;
	struct top_metrics before, after;
	struct top_rates r;
	char err[128], out[8192];
	struct sbuf sb;

	EXPECT_INT(top_transactions_parse(TXNS, strlen(TXNS), &t, err, sizeof err), 0);
	memset(&before, 0, sizeof before);
	memset(&after, 0, sizeof after);
	after.noutcomes = 1;
	memcpy(after.outcomes[0].name, "accepted", 9);
	after.outcomes[0].total = 1;
	after.nbuckets = before.nbuckets = 3;
	after.upload[0] = before.upload[0] = (struct top_bucket){ 1, 0 };
	after.upload[1] = before.upload[1] = (struct top_bucket){ 2.5, 0 };
	after.upload[2] = before.upload[2] = (struct top_bucket){ INFINITY, 0 };
	after.upload[1].count = after.upload[2].count = 1;
	top_rates_compute(&before, &after, 2.0, &r);
	struct top_scene sc = { .url = "http://127.0.0.1:9754", .txns = &t, .metrics = &after,
				.rates = &r, .interval_s = 2 };
	sbuf_init(&sb, out, sizeof out);
	top_text_once(&sc, 80, collect, &sb);
	EXPECT_STR(out, want);
	top_transactions_free(&t);
}

/* The client column at 80 columns (20 wide): the port goes, then the name is cut. */
static void
test_client_cut(void)
{
	static const struct {
		const char *client, *want;
	} cases[] = {
		{ "m[192.0.2.1]:25", "m[192.0.2.1]:25     " },
		{ "slow.example[192.0.2.10]:40001", "slow....[192.0.2.10]" },
		{ "mail.example[192.0.2.1]:25", "mail.e...[192.0.2.1]" },
		{ "mx[192.0.2.123]:40001", "mx[192.0.2.123]     " },
		{ "[2001:db8:1234:5678::1]:25", "[2001:db8:1234:56..." },
		{ "no-brackets-but-a-long-name", "no-brackets-but-a..." },
		{ "evil\x1b[31m]x[1.2.3.4]:5", "evil?[31m]x[1.2.3.4]" },
		{ "x\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5[192.0.2.1]:25",
		  "x\xe6\x97\xa5\xe6\x97\xa5...[192.0.2.1] " },	/* 日 two columns */
	};
	struct top_cols c;
	struct top_scene sc = { .url = "u" };

	top_layout(80, &c);
	EXPECT_INT(c.client, 20);
	for (size_t i = 0; i < COUNT(cases); i++) {
		char buf[TOP_LINE_MAX], want[64];
		struct sbuf sb;
		struct top_session s = { .client = strdup(cases[i].client), .phase = strdup("rcpt") };
		sbuf_init(&sb, buf, sizeof buf);
		top_table_row(&sb, &sc, &s, &c);
		snprintf(want, sizeof want, "  %s ", cases[i].want);
		buf[strlen(want)] = '\0';
		EXPECT_STR(buf, want);
		free(s.client);
		free(s.phase);
	}
}

static void
test_status_line(void)
{
	struct top_state st;
	char buf[512];
	struct sbuf sb;

	top_state_init(&st);
	sbuf_init(&sb, buf, sizeof buf);
	top_line_status(&sb, &st, "", "12:00:01", 2, 80, 0);
	EXPECT_STR(buf, "updated 12:00:01  sort: time in phase  ? help  q quit");
	sbuf_init(&sb, buf, sizeof buf);
	top_line_status(&sb, &st, "cannot reach http://x/metrics: \x1b[31m", "12:00:01", 0.5, 80, 0);
	EXPECT_STR(buf, "retrying every 0.5s: cannot reach http://x/metrics: ?[31m  sort: time in phas...");
	top_state_key(&st, 'p');
	top_state_key(&st, 'd');
	top_state_key(&st, '/');
	top_state_key(&st, 'x');
	sbuf_init(&sb, buf, sizeof buf);
	top_line_status(&sb, &st, "", "", 2, 200, 0);
	EXPECT_STR(buf, "filter (client or sender, Enter applies, Esc cancels): x");
	top_state_key(&st, '\n');
	sbuf_init(&sb, buf, sizeof buf);
	top_line_status(&sb, &st, "", "", 2, 200, 0);
	EXPECT_STR(buf, "connecting  [PAUSED]  [DATA only]  [filter: x]  sort: time in phase  ? help  q quit");
}

/* ---- top_conf ----------------------------------------------------------- */

static void
test_urls(void)
{
	static const struct {
		const char *listen, *want;
	} l[] = {
		{ "127.0.0.1:9754", "http://127.0.0.1:9754" }, { "0.0.0.0:80", "http://127.0.0.1:80" },
		{ "[::1]:9754", "http://[::1]:9754" }, { "[::]:9754", "http://[::1]:9754" },
		{ "", NULL }, { "9754", NULL }, { "host:x", NULL }, { "[::1]9754", NULL },
		{ "evil/path:1", NULL },
	};
	for (size_t i = 0; i < COUNT(l); i++) {
		char url[TOP_URL_MAX] = "";
		int rc = top_url_from_listen(l[i].listen, url, sizeof url);
		EXPECT_INT(rc, l[i].want ? 0 : -1);
		if (l[i].want)
			EXPECT_STR(url, l[i].want);
	}
	static const struct {
		const char *in, *want;
	} u[] = {
		{ "http://127.0.0.1:9754", "http://127.0.0.1:9754" },
		{ "127.0.0.1:9754", "http://127.0.0.1:9754" },
		{ "https://mx.example/smtptrace/", "https://mx.example/smtptrace" },
		{ "http://h:1/metrics", "http://h:1" }, { "http://h:1/transactions?limit=5", "http://h:1" },
		{ "http://h:1//recent", "http://h:1" }, { "http://", NULL }, { "http:///x", NULL },
		{ "ftp://h/", NULL }, { "http://h /", NULL }, { "http://h\x1b", NULL },
	};
	for (size_t i = 0; i < COUNT(u); i++) {
		char url[TOP_URL_MAX] = "", err[128] = "";
		int rc = top_url_base(u[i].in, url, sizeof url, err, sizeof err);
		EXPECT_INT(rc, u[i].want ? 0 : -1);
		if (u[i].want)
			EXPECT_STR(url, u[i].want);
		else
			CU_ASSERT(err[0] != '\0');
	}
}

static void
test_default_url_file(void)
{
	char path[] = "/tmp/smtptrace-top-test-XXXXXX", url[TOP_URL_MAX], note[512];
	int fd = mkstemp(path);
	static const struct {
		const char *text, *want, *note;
	} cases[] = {
		{ "metrics: { http_listen = \"127.0.0.1:9999\"; };\n", "http://127.0.0.1:9999", "" },
		{ "metrics: { http_listen = \"\"; };\n", TOP_DEFAULT_URL, "" },
		{ "socket = \"unix:/x\";\n", TOP_DEFAULT_URL, "" },
		{ "metrics: { http_listen = \"nonsense\"; };\n", TOP_DEFAULT_URL, "does not read" },
		{ "metrics: { http_listen = ; };\n", TOP_DEFAULT_URL, ":1: syntax error" },
	};

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	for (size_t i = 0; i < COUNT(cases); i++) {
		FILE *f = fopen(path, "w");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs(cases[i].text, f);
		fclose(f);
		top_default_url(path, url, sizeof url, note, sizeof note);
		EXPECT_STR(url, cases[i].want);
		if (cases[i].note[0] == '\0')
			EXPECT_STR(note, "");
		else
			EXPECT_CONTAINS(note, cases[i].note);
	}
	unlink(path);
	top_default_url(path, url, sizeof url, note, sizeof note);	/* gone: fine */
	EXPECT_STR(url, TOP_DEFAULT_URL);
	EXPECT_STR(note, "");
}

int
suite_top(void)
{
	CU_pSuite s = CU_add_suite("top", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "fit: table of strings", test_fit_table) ||
	       !CU_add_test(s, "fit: every byte comes out safe", test_fit_every_byte) ||
	       !CU_add_test(s, "strndup: NUL and the cut", test_strndup) ||
	       !CU_add_test(s, "/transactions: every field", test_transactions_good) ||
	       !CU_add_test(s, "/transactions: the keys an older milter has", test_transactions_minimal) ||
	       !CU_add_test(s, "documents that are not smtptrace's", test_documents_refused) ||
	       !CU_add_test(s, "/recent: every field", test_recent_good) ||
	       !CU_add_test(s, "a long string kept cut", test_long_string_cut) ||
	       !CU_add_test(s, "/metrics: the samples kept", test_metrics_parse) ||
	       !CU_add_test(s, "histogram_quantile table", test_quantile_table) ||
	       !CU_add_test(s, "rates from metrics.c's output", test_rates_from_milter_metrics) ||
	       !CU_add_test(s, "absurd numbers (fuzzing)", test_absurd_numbers) ||
	       !CU_add_test(s, "keys, filter and sort", test_keys_and_select) ||
	       !CU_add_test(s, "layout fits each width", test_layout_fits) ||
	       !CU_add_test(s, "durations, bars, outcome colours", test_duration_bar_colour) ||
	       !CU_add_test(s, "--once snapshot at 80 columns", test_once_golden) ||
	       !CU_add_test(s, "the client column cut before the address", test_client_cut) ||
	       !CU_add_test(s, "status line", test_status_line) ||
	       !CU_add_test(s, "URLs from http_listen and -u", test_urls) ||
	       !CU_add_test(s, "default URL from the config file", test_default_url_file);
}
