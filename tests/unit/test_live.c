/*
 * live.c and the /transactions and /recent documents (expose.c): every
 * phase a session goes through, driven through the callbacks with the
 * fake seam and a fake clock; the JSON of both endpoints with hostile
 * values, checked by a strict JSON parser; ?phase=; the sort order; the
 * ring wrapping; limits, truncation and the 32 MiB cap; a row whose writer
 * stalls mid-store; and (for make tsan) callbacks on several threads with
 * the watchdog and a reader listing all the while.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "callbacks.h"
#include "cfgstore.h"
#include "expose.h"
#include "fake_mta.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "tests.h"
#include "watchdog.h"

/* ---- a strict JSON parser: valid or not, and the top level's numbers ---- */

#define TOP_KEYS_MAX 16

struct jp {
	const char *p, *end;
	int         depth;
	const char *err;
	size_t      ntop;
	char        top_key[TOP_KEYS_MAX][24];
	const char *top_value[TOP_KEYS_MAX];
	size_t      items;	/* elements of arrays at depth 2 (the rows) */
};

static bool j_value(struct jp *j);

static void
j_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

static bool
j_fail(struct jp *j, const char *why)
{
	if (j->err == NULL)
		j->err = why;
	return false;
}

/* One UTF-8 character of n bytes at p, well formed (no overlong form, no surrogate). */
static bool
utf8_ok(const unsigned char *p, size_t left, size_t *n)
{
	unsigned c = p[0];
	size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
	unsigned cp;

	if (len == 0 || len > left)
		return false;
	cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return false;
	*n = len;
	return true;
}

static bool
j_string(struct jp *j, char *copy, size_t size)
{
	size_t k = 0;

	if (j->p >= j->end || *j->p != '"')
		return j_fail(j, "a string");
	for (j->p++; j->p < j->end && *j->p != '"'; ) {
		unsigned char c = (unsigned char)*j->p;
		if (c < 0x20)
			return j_fail(j, "a raw control byte in a string");
		if (c == '\\') {
			if (j->end - j->p < 2 || strchr("\"\\/bfnrtu", j->p[1]) == NULL)
				return j_fail(j, "a bad escape");
			if (j->p[1] == 'u') {
				if (j->end - j->p < 6)
					return j_fail(j, "a short \\u");
				for (int i = 2; i < 6; i++)
					if (strchr("0123456789abcdefABCDEF", j->p[i]) == NULL)
						return j_fail(j, "a bad \\u");
				j->p += 6;
			} else {
				j->p += 2;
			}
			continue;
		}
		size_t n = 1;
		if (c >= 0x80 && !utf8_ok((const unsigned char *)j->p, (size_t)(j->end - j->p), &n))
			return j_fail(j, "invalid UTF-8 in a string");
		if (copy != NULL && k + 1 < size)
			copy[k++] = (char)c;
		j->p += n;
	}
	if (copy != NULL)
		copy[k] = '\0';
	if (j->p >= j->end)
		return j_fail(j, "an unterminated string");
	j->p++;
	return true;
}

static bool
j_number(struct jp *j)
{
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	else
		return j_fail(j, "a number");
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return j_fail(j, "digits after the point");
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s;
}

static bool
j_literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || strncmp(j->p, word, n) != 0)
		return j_fail(j, "a value");
	j->p += n;
	return true;
}

static bool
j_container(struct jp *j, char close)
{
	bool object = close == '}';

	j->p++;
	j->depth++;
	if (j->depth > 8)
		return j_fail(j, "too deep");
	j_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return true;
	}
	for (;;) {
		char key[24] = "";
		j_ws(j);
		if (object) {
			if (!j_string(j, key, sizeof key))
				return false;
			j_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return j_fail(j, "a colon");
			j->p++;
			j_ws(j);
			if (j->depth == 1 && j->ntop < TOP_KEYS_MAX) {
				snprintf(j->top_key[j->ntop], sizeof j->top_key[0], "%s", key);
				j->top_value[j->ntop++] = j->p;
			}
		} else if (j->depth == 2) {
			j->items++;
		}
		if (!j_value(j))
			return false;
		j_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return true;
		}
		return j_fail(j, object ? "a comma or }" : "a comma or ]");
	}
}

static bool
j_value(struct jp *j)
{
	j_ws(j);
	if (j->p >= j->end)
		return j_fail(j, "a value");
	switch (*j->p) {
	case '{': return j_container(j, '}');
	case '[': return j_container(j, ']');
	case '"': return j_string(j, NULL, 0);
	case 't': return j_literal(j, "true");
	case 'f': return j_literal(j, "false");
	case 'n': return j_literal(j, "null");
	default: return j_number(j);
	}
}

/* The whole text one JSON object (and a newline); its top-level keys in j. */
static bool
json_check(const char *text, size_t len, struct jp *j)
{
	memset(j, 0, sizeof *j);
	j->p = text;
	j->end = text + len;
	if (!j_value(j))
		goto bad;
	j_ws(j);
	if (j->p != j->end) {
		j_fail(j, "text after the value");
		goto bad;
	}
	return true;
bad:
	fprintf(stderr, "\ninvalid JSON (%s) at %zu: %.80s\n", j->err,
		(size_t)(j->p - text), j->p);
	return false;
}

/* A top-level value as a number (-1 when absent or not a number). */
static long long
top_num(const struct jp *j, const char *key)
{
	for (size_t i = 0; i < j->ntop; i++)
		if (strcmp(j->top_key[i], key) == 0)
			return strchr("-0123456789", *j->top_value[i]) ? atoll(j->top_value[i]) : -1;
	return -1;
}

static bool
top_is(const struct jp *j, const char *key, const char *literal)
{
	for (size_t i = 0; i < j->ntop; i++)
		if (strcmp(j->top_key[i], key) == 0)
			return strncmp(j->top_value[i], literal, strlen(literal)) == 0;
	return false;
}

/* ---- fixtures -------------------------------------------------------------- */

static struct registry reg;
static struct config cfg;
static struct fake_ctx fctx;
static SMFICTX *ctx = FAKE_CTX(&fctx);
static char last_txn_line[4096];
static atomic_uint lines_logged;

static void
capture(int priority, const char *line)
{
	atomic_fetch_add(&lines_logged, 1);
	if (priority == LOG_INFO && strstr(line, "kind=txn") != NULL)
		snprintf(last_txn_line, sizeof last_txn_line, "%s", line);
}

/* Lines from several threads: only counted. */
static void
count_only(int priority, const char *line)
{
	(void)priority;
	(void)line;
	atomic_fetch_add(&lines_logged, 1);
}

static void
reg_up(int64_t warn_after_ms, int64_t repeat_ms, size_t recent)
{
	CU_ASSERT_FATAL(registry_init(&reg, warn_after_ms, repeat_ms) == 0);
	CU_ASSERT_FATAL(live_recent_alloc(&reg.live, recent) == 0);
	reg.live.started_ms = 0;
}

static void
reg_down(void)
{
	callbacks_init(&cfg, NULL);
	registry_destroy(&reg);
}

static char *
sessions_json(unsigned mask, size_t limit, int64_t now, struct jp *j)
{
	struct expose_query q = { .phase_mask = mask, .limit = limit };
	size_t len;
	char *json = expose_sessions(&reg, &q, now, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_EQUAL(strlen(json), len);
	CU_ASSERT(len <= EXPOSE_MAX_SIZE);
	CU_ASSERT(json_check(json, len, j));
	return json;
}

static char *
recent_json(size_t limit, int64_t now, int64_t wall, struct jp *j)
{
	size_t len;
	char *json = expose_recent(&reg, limit, now, wall, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_EQUAL(strlen(json), len);
	CU_ASSERT(json_check(json, len, j));
	return json;
}

/* A row published straight into a new slot. */
static unsigned
put_row(const char *session, enum live_phase phase, int64_t since, int64_t connect_at)
{
	struct live_row row;
	unsigned ref = live_open(&reg.live);

	CU_ASSERT_FATAL(ref != 0);
	memset(&row, 0, sizeof row);
	snprintf(row.session, sizeof row.session, "%s", session);
	snprintf(row.client, sizeof row.client, "unknown[192.0.2.1]:%u", ref);
	row.phase = (uint8_t)phase;
	row.since = since;
	row.connect_at = connect_at;
	live_publish(&reg.live, ref, &row);
	return ref;
}

/* The one row of a session in the table; false when it has none. */
static bool
row_of(const char *session, struct live_row *out)
{
	size_t max = live_rows_max(&reg.live);
	struct live_row *rows = calloc(max ? max : 1, sizeof *rows);
	struct live_counts c;
	bool found = false;

	CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
	size_t n = live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, max, &c);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].session, session) == 0) {
			*out = rows[i];
			found = true;
		}
	free(rows);
	return found;
}

static int
suite_setup(void)
{
	config_defaults(&cfg);
	snprintf(cfg.header_authserv_id, sizeof cfg.header_authserv_id, "mx.test");
	cfg.mta_data_timeout = 5;
	cfg.mta_timeout_tolerance = 1;
	log_set_sink(capture);
	return 0;
}

/* ---- phases through the callbacks ------------------------------------------ */

enum op {
	OP_NEGOTIATE, OP_CONNECT, OP_HELO, OP_MAIL, OP_RCPT, OP_RCPT_REJECTED, OP_DATA,
	OP_HEADER, OP_BODY, OP_EOM, OP_ABORT, OP_UNKNOWN, OP_CLOSE, OP_DUE,
};

struct step {
	const char *what;
	enum op     op;
	int64_t     at;
	const char *phase;	/* the row's phase after it; NULL: no row */
	int64_t     since;
	unsigned    txn, rcpt, rcpt_rejected, warnings;
	const char *from;	/* NULL: the JSON says null */
	const char *recent;	/* outcome of the newest /recent entry; NULL: none yet */
};

static const struct step phase_steps[] = {
	{ "negotiate", OP_NEGOTIATE, 1000, "connect", 1000, 0, 0, 0, 0, NULL, NULL },
	{ "connect", OP_CONNECT, 1003, "connect", 1003, 0, 0, 0, 0, NULL, NULL },
	{ "EHLO", OP_HELO, 1012, "helo", 1012, 0, 0, 0, 0, NULL, NULL },
	{ "MAIL", OP_MAIL, 1031, "mail", 1031, 1, 0, 0, 0, "<a@example.test>", NULL },
	{ "RCPT", OP_RCPT, 1040, "rcpt", 1040, 1, 1, 0, 0, "<a@example.test>", NULL },
	{ "a rejected RCPT: still rcpt, since the first", OP_RCPT_REJECTED, 1045, "rcpt", 1040,
	  1, 1, 1, 0, "<a@example.test>", NULL },
	{ "DATA", OP_DATA, 1050, "data", 1050, 1, 1, 1, 0, "<a@example.test>", NULL },
	{ "stall warning", OP_DUE, 3050, "data", 1050, 1, 1, 1, 1, "<a@example.test>", NULL },
	{ "first header", OP_HEADER, 4000, "content", 4000, 1, 1, 1, 1, "<a@example.test>", NULL },
	{ "body", OP_BODY, 4005, "content", 4000, 1, 1, 1, 1, "<a@example.test>", NULL },
	{ "end of message", OP_EOM, 4010, "helo", 4010, 1, 0, 0, 0, NULL, "accepted" },
	{ "EHLO again: still helo", OP_HELO, 4500, "helo", 4010, 1, 0, 0, 0, NULL, "accepted" },
	{ "MAIL 2", OP_MAIL, 5000, "mail", 5000, 2, 0, 0, 0, "<a@example.test>", "accepted" },
	{ "RCPT 2", OP_RCPT, 5001, "rcpt", 5001, 2, 1, 0, 0, "<a@example.test>", "accepted" },
	{ "DATA 2", OP_DATA, 5002, "data", 5002, 2, 1, 0, 0, "<a@example.test>", "accepted" },
	{ "abort after DATA: over for the client, outcome pending", OP_ABORT, 6000, "helo", 6000,
	  2, 0, 0, 0, NULL, "accepted" },
	{ "MAIL 3 settles 2", OP_MAIL, 7000, "mail", 7000, 3, 0, 0, 0, "<a@example.test>",
	  "refused-after-354" },
	{ "abort before DATA (RSET)", OP_ABORT, 7100, "helo", 7100, 3, 0, 0, 0, NULL,
	  "aborted-before-data" },
	{ "unknown command", OP_UNKNOWN, 7200, "helo", 7100, 3, 0, 0, 0, NULL, "aborted-before-data" },
	{ "MAIL 4", OP_MAIL, 8000, "mail", 8000, 4, 0, 0, 0, "<a@example.test>",
	  "aborted-before-data" },
	{ "only a rejected RCPT", OP_RCPT_REJECTED, 8001, "rcpt", 8001, 4, 0, 1, 0,
	  "<a@example.test>", "aborted-before-data" },
	{ "close", OP_CLOSE, 9000, NULL, 0, 0, 0, 0, 0, NULL, "no-valid-recipients" },
};

static void
do_step(enum op op)
{
	unsigned long pf0, pf1, pf2, pf3;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4321) };
	char host[] = "[192.0.2.7]", helo[] = "client.test", from[] = "<a@example.test>";
	char to[] = "<b@example.test>", hname[] = "Subject", hvalue[] = "hi", cmd[] = "XYZZY";
	char *from_argv[] = { from, NULL }, *to_argv[] = { to, NULL };
	unsigned char body[10] = { 0 };
	struct stall_view due[2];

	switch (op) {
	case OP_NEGOTIATE:
		cb_negotiate(ctx, 0x1ff, 0x1fffff, 0, 0, &pf0, &pf1, &pf2, &pf3);
		break;
	case OP_CONNECT:
		inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
		cb_connect(ctx, host, (_SOCK_ADDR *)&sin);
		break;
	case OP_HELO: cb_helo(ctx, helo); break;
	case OP_MAIL:
		fake_macro(&fctx, "i", "4QX1Z2abcd");
		cb_envfrom(ctx, from_argv);
		break;
	case OP_RCPT:
	case OP_RCPT_REJECTED:
		fake_macro(&fctx, "{rcpt_mailer}", op == OP_RCPT ? "smtp" : "error");
		fake_macro(&fctx, "{rcpt_host}", op == OP_RCPT ? "example.test" : "5.7.1");
		fake_macro(&fctx, "{rcpt_addr}", op == OP_RCPT ? to : "Access denied");
		cb_envrcpt(ctx, to_argv);
		break;
	case OP_DATA: cb_data(ctx); break;
	case OP_HEADER: cb_header(ctx, hname, hvalue); break;
	case OP_BODY: cb_body(ctx, body, sizeof body); break;
	case OP_EOM: cb_eom(ctx); break;
	case OP_ABORT: cb_abort(ctx); break;
	case OP_UNKNOWN: cb_unknown(ctx, cmd); break;
	case OP_CLOSE: cb_close(ctx); break;
	case OP_DUE: registry_due(&reg, fake_now, due, 2); break;
	}
}

/* The session id of the one open row. */
static void
only_session(char id[17])
{
	struct live_row rows[2];
	struct live_counts c;

	EXPECT_INT(live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, 2, &c), 1);
	snprintf(id, 17, "%s", rows[0].session);
}

static void
test_phases_through_callbacks(void)
{
	char id[17] = "";
	struct live_ended newest;

	reg_up(2000, 0, 8);
	callbacks_init(&cfg, &reg);
	fake_reset(&fctx);
	for (size_t i = 0; i < sizeof phase_steps / sizeof phase_steps[0]; i++) {
		const struct step *st = &phase_steps[i];
		struct live_row row;

		fake_now = st->at;
		do_step(st->op);
		if (i == 0)
			only_session(id);
		bool found = row_of(id, &row);
		if (found != (st->phase != NULL) ||
		    (found && strcmp(live_phase_name((enum live_phase)row.phase), st->phase) != 0))
			fprintf(stderr, "\nafter %s: phase %s, want %s\n", st->what,
				found ? live_phase_name((enum live_phase)row.phase) : "(no row)",
				st->phase ? st->phase : "(no row)");
		CU_ASSERT_EQUAL(found, st->phase != NULL);
		if (found) {
			EXPECT_STR(live_phase_name((enum live_phase)row.phase), st->phase);
			EXPECT_INT(row.since, st->since);
			EXPECT_INT(row.txn, st->txn);
			EXPECT_INT(row.rcpt, st->rcpt);
			EXPECT_INT(row.rcpt_rejected, st->rcpt_rejected);
			EXPECT_INT(row.warnings, st->warnings);
			EXPECT_INT(row.connect_at, i == 0 ? 1000 : 1003);
			if (i > 0)
				EXPECT_STR(row.client, "unknown[192.0.2.7]:4321");
			EXPECT_STR(row.helo, i >= 2 ? "client.test" : "");
			if (st->from != NULL)
				EXPECT_STR(row.sender, st->from);
			EXPECT_STR(row.queue_id, st->from != NULL ? "4QX1Z2abcd" : "");
		}
		size_t n = live_recent(&reg.live, &newest, 1);
		EXPECT_INT(n, st->recent != NULL);
		if (n == 1 && st->recent != NULL) {
			if (strcmp(newest.outcome, st->recent) != 0)
				fprintf(stderr, "\nafter %s: ", st->what);
			EXPECT_STR(newest.outcome, st->recent);
		}
	}
	struct live_counts c;
	struct live_row none[1];
	EXPECT_INT(live_snapshot(&reg.live, LIVE_ALL_PHASES, none, 1, &c), 0);
	EXPECT_INT(c.open, 0);
	reg_down();
}

/* The same phases as JSON: from null outside a transaction, stalled only in data. */
static void
test_session_row_json(void)
{
	struct jp j;
	unsigned long pf0, pf1, pf2, pf3;

	reg_up(2000, 0, 8);
	callbacks_init(&cfg, &reg);
	fake_reset(&fctx);
	fake_now = 1000;
	cb_negotiate(ctx, 0x1ff, 0x1fffff, 0, 0, &pf0, &pf1, &pf2, &pf3);
	char *json = sessions_json(0, 0, 1500, &j);
	EXPECT_CONTAINS(json, "\"phase\":\"connect\",\"seconds_in_phase\":0.500,"
			"\"seconds_connected\":0.500,\"client\":\"unknown[unknown]\",\"helo\":null,"
			"\"from\":null,\"rcpt\":0,\"rcpt_rejected\":0,\"queue_id\":null,\"tls\":null,"
			"\"stalled\":false,\"warnings\":0}");
	EXPECT_INT(top_num(&j, "open"), 1);
	free(json);
	do_step(OP_CONNECT);
	fake_macro(&fctx, "{tls_version}", "TLSv1.3");
	do_step(OP_HELO);
	do_step(OP_MAIL);
	do_step(OP_RCPT);
	fake_now = 2000;
	do_step(OP_DATA);
	fake_now = 4000;
	do_step(OP_DUE);
	json = sessions_json(0, 0, 4500, &j);
	EXPECT_CONTAINS(json, ",\"txn\":1,\"phase\":\"data\",\"seconds_in_phase\":2.500,"
			"\"seconds_connected\":3.500,\"client\":\"unknown[192.0.2.7]:4321\","
			"\"helo\":\"client.test\",\"from\":\"<a@example.test>\",\"rcpt\":1,"
			"\"rcpt_rejected\":0,\"queue_id\":\"4QX1Z2abcd\",\"tls\":\"TLSv1.3\","
			"\"stalled\":true,\"warnings\":1}");
	EXPECT_INT(top_num(&j, "in_data"), 1);
	EXPECT_INT(top_num(&j, "stalled"), 1);
	EXPECT_INT(top_num(&j, "stall_warn_after_s"), 2);
	EXPECT_INT(top_num(&j, "uptime_s"), 4);
	EXPECT_CONTAINS(json, "{\"now_ms\":4500,\"version\":\"");
	free(json);
	cb_close(ctx);
	json = sessions_json(0, 0, 5000, &j);
	EXPECT_CONTAINS(json, "\"open\":0,\"in_data\":0,\"stalled\":0,\"transactions\":[],"
			"\"count\":0,\"truncated\":false}\n");
	free(json);
	reg_down();
}

/* ---- hostile values --------------------------------------------------------- */

static void
test_hostile_json(void)
{
	/* quotes, backslash, CR LF, a tab, DEL, C1 and invalid UTF-8, a valid é */
	static const char hostile[] = "a\"b\\c\r\nd\te\x7f\x01\x9b\xc3\xa9\xff\xc3";
	struct live_row row;
	struct live_ended e;
	struct jp j;

	reg_up(1000, 0, 4);
	unsigned ref = live_open(&reg.live);
	memset(&row, 0, sizeof row);
	snprintf(row.session, sizeof row.session, "\"\\\n%s", "0123456789ab");
	snprintf(row.client, sizeof row.client, "%s[192.0.2.1]:25", hostile);
	snprintf(row.helo, sizeof row.helo, "%s", hostile);
	snprintf(row.sender, sizeof row.sender, "<%s@x>", hostile);
	snprintf(row.queue_id, sizeof row.queue_id, "%s", hostile);
	snprintf(row.tls, sizeof row.tls, "%s", hostile);
	row.phase = LIVE_RCPT;
	row.since = 100;
	live_publish(&reg.live, ref, &row);
	char *json = sessions_json(0, 0, 1100, &j);
	EXPECT_CONTAINS(json, "\"helo\":\"a\\\"b\\\\c\\r\\nd\\te\\u007f\\u0001\\u009b\xc3\xa9\\u00ff\\u00c3\"");
	CU_ASSERT_PTR_NULL(strchr(json, '\r'));
	CU_ASSERT_PTR_NULL(strchr(json, '\t'));
	EXPECT_INT(j.items, 1);
	free(json);

	/* every text at its cap, each byte escaped six bytes long */
	memset(&row, 0, sizeof row);
	memset(row.session, 0x01, sizeof row.session - 1);
	memset(row.client, 0x02, sizeof row.client - 1);
	memset(row.helo, 0x80, sizeof row.helo - 1);
	memset(row.sender, 0x1f, sizeof row.sender - 1);
	memset(row.queue_id, '"', sizeof row.queue_id - 1);
	memset(row.tls, '\\', sizeof row.tls - 1);
	row.phase = LIVE_DATA;
	live_publish(&reg.live, ref, &row);
	json = sessions_json(0, 0, 1100, &j);
	EXPECT_INT(top_num(&j, "count"), 1);
	free(json);

	memset(&e, 0, sizeof e);
	memcpy(e.session, hostile, sizeof e.session - 1);	/* cut: no NUL inside */
	snprintf(e.client, sizeof e.client, "%s", hostile);
	snprintf(e.helo, sizeof e.helo, "%s", hostile);
	snprintf(e.sender, sizeof e.sender, "%s", hostile);
	snprintf(e.queue_id, sizeof e.queue_id, "%s", hostile);
	snprintf(e.outcome, sizeof e.outcome, "%s", hostile);
	snprintf(e.reply, sizeof e.reply, "%s", hostile);
	e.upload_ms = e.duration_ms = -1;
	live_recent_push(&reg.live, &e);
	memset(&e, 0x85, sizeof e);	/* no NUL anywhere: the caps must hold */
	e.upload_ms = e.duration_ms = 7;
	e.ended_at = 0;
	live_recent_push(&reg.live, &e);
	json = recent_json(0, 1000, 0, &j);
	EXPECT_INT(top_num(&j, "count"), 2);
	EXPECT_CONTAINS(json, "\"from\":\"a\\\"b\\\\c\\r\\nd\\te\\u007f");
	EXPECT_CONTAINS(json, "\"reply\":\"a\\\"b");
	free(json);
	live_close(&reg.live, ref);
	reg_down();
}

/* ---- ?phase=, the order, limits ---------------------------------------------- */

static void
test_phase_filter(void)
{
	static const enum live_phase phases[] = {
		LIVE_CONNECT, LIVE_HELO, LIVE_HELO, LIVE_MAIL, LIVE_RCPT, LIVE_DATA, LIVE_DATA,
		LIVE_DATA, LIVE_CONTENT,
	};
	const size_t n = sizeof phases / sizeof phases[0];
	struct jp j;

	reg_up(1000, 0, 0);
	for (size_t i = 0; i < n; i++) {
		char id[17];
		snprintf(id, sizeof id, "%016zu", i);
		unsigned ref = put_row(id, phases[i], 100 + (int64_t)i, 50);
		if (i == 5)
			live_set_warnings(&reg.live, ref, 2);
	}
	for (int p = LIVE_CONNECT; p < LIVE__COUNT; p++) {
		size_t want = 0;
		for (size_t i = 0; i < n; i++)
			want += phases[i] == (enum live_phase)p;
		char *json = sessions_json(LIVE_PHASE_BIT(p), 0, 5000, &j);
		char phase[40];
		snprintf(phase, sizeof phase, "\"phase\":\"%s\"", live_phase_name((enum live_phase)p));
		size_t seen = 0;
		for (const char *at = json; (at = strstr(at, "\"phase\":\"")) != NULL; at++)
			seen++;
		size_t right = 0;
		for (const char *at = json; (at = strstr(at, phase)) != NULL; at++)
			right++;
		EXPECT_INT(seen, want);
		EXPECT_INT(right, want);
		EXPECT_INT(top_num(&j, "count"), want);
		EXPECT_INT(top_num(&j, "open"), n);
		EXPECT_INT(top_num(&j, "in_data"), 3);
		EXPECT_INT(top_num(&j, "stalled"), 1);
		CU_ASSERT(top_is(&j, "truncated", "false"));
		free(json);
	}
	EXPECT_INT(live_phase_from_name("data"), LIVE_DATA);
	EXPECT_INT(live_phase_from_name("free"), -1);
	EXPECT_INT(live_phase_from_name("DATA"), -1);
	EXPECT_INT(live_phase_from_name(""), -1);
	reg_down();
}

/* The longest in its phase first, whatever the phase; ties: the longest connected, then the id. */
static void
test_sort_order(void)
{
	static const struct {
		const char     *id;
		enum live_phase phase;
		int64_t         since, connect_at;
	} rows[] = {
		{ "000000000000000e", LIVE_HELO, 900, 10 },
		{ "000000000000000a", LIVE_DATA, 300, 10 },
		{ "000000000000000c", LIVE_RCPT, 500, 20 },
		{ "000000000000000b", LIVE_CONNECT, 500, 10 },
		{ "000000000000000d", LIVE_CONTENT, 500, 20 },
		{ "0000000000000009", LIVE_MAIL, 100, 90 },
	};
	static const char *const want[] = {
		"0000000000000009", "000000000000000a", "000000000000000b",
		"000000000000000c", "000000000000000d", "000000000000000e",
	};
	struct jp j;

	reg_up(1000, 0, 0);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		put_row(rows[i].id, rows[i].phase, rows[i].since, rows[i].connect_at);
	char *json = sessions_json(0, 0, 1000, &j);
	const char *at = json;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char key[40];
		snprintf(key, sizeof key, "{\"session\":\"%s\"", want[i]);
		const char *next = strstr(at, key);
		if (next == NULL)
			fprintf(stderr, "\nrow %zu: want %s next\n", i, want[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(next);
		at = next + 1;
	}
	free(json);
	reg_down();
}

static void
test_limit_and_truncation(void)
{
	enum { N = 50 };
	struct jp j;

	reg_up(1000, 0, 0);
	for (int i = 0; i < N; i++) {
		char id[17];
		snprintf(id, sizeof id, "%016d", i);
		put_row(id, i % 2 ? LIVE_DATA : LIVE_HELO, 1000 + i, 0);
	}
	static const struct {
		unsigned mask;
		size_t   limit;
		long long count;
		bool     truncated;
	} cases[] = {
		{ 0, 3, 3, true },
		{ 0, 0, N, false },			/* default 1000 */
		{ 0, N, N, false },
		{ 0, 1000000, N, false },		/* capped at 20000 */
		{ LIVE_PHASE_BIT(LIVE_DATA), 10, 10, true },
		{ LIVE_PHASE_BIT(LIVE_DATA), 25, 25, false },
		{ LIVE_PHASE_BIT(LIVE_MAIL), 1, 0, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *json = sessions_json(cases[i].mask, cases[i].limit, 5000, &j);
		EXPECT_INT(top_num(&j, "count"), cases[i].count);
		EXPECT_INT(j.items, cases[i].count);
		CU_ASSERT(top_is(&j, "truncated", cases[i].truncated ? "true" : "false"));
		EXPECT_INT(top_num(&j, "open"), N);
		EXPECT_INT(top_num(&j, "in_data"), N / 2);
		free(json);
	}
	/* the limit keeps the longest in its phase: session 0, then 1, 2 */
	char *json = sessions_json(0, 3, 5000, &j);
	const char *first = strstr(json, "\"session\":");
	CU_ASSERT(first != NULL && strncmp(first, "\"session\":\"0000000000000000\"", 28) == 0);
	free(json);
	/* ?phase=data through the old entry point */
	size_t len;
	json = expose_transactions(&reg, 5000, 7, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT(json_check(json, len, &j));
	EXPECT_INT(top_num(&j, "count"), 7);
	EXPECT_CONTAINS(json, "\"session\":\"0000000000000001\",\"txn\":0,\"phase\":\"data\"");
	free(json);
	reg_down();
}

/*
 * 20,000 sessions with every value at its cap and escaped six bytes a byte
 * do not fit the 32 MiB cap: the list stops where it must, stays valid
 * JSON, and says so.
 */
static void
test_over_the_cap(void)
{
	enum { N = EXPOSE_ROWS_MAX };
	struct live_row row;
	struct jp j;

	reg_up(1000, 0, 0);
	memset(&row, 0, sizeof row);
	memset(row.client, 0x03, sizeof row.client - 1);
	memset(row.helo, 0x01, sizeof row.helo - 1);
	memset(row.sender, 0x02, sizeof row.sender - 1);
	memset(row.queue_id, 0x04, sizeof row.queue_id - 1);
	memset(row.tls, 0x05, sizeof row.tls - 1);
	row.phase = LIVE_DATA;
	for (int i = 0; i < N; i++) {
		unsigned ref = live_open(&reg.live);
		CU_ASSERT_FATAL(ref != 0);
		snprintf(row.session, sizeof row.session, "%016d", i);
		row.since = 1000 + i;
		live_publish(&reg.live, ref, &row);
	}
	char *json = sessions_json(0, N, 50000, &j);
	EXPECT_INT(top_num(&j, "open"), N);
	CU_ASSERT(top_is(&j, "truncated", "true"));
	long long count = top_num(&j, "count");
	CU_ASSERT(count > 1000 && count < N);
	EXPECT_INT(j.items, count);
	free(json);
	reg_down();
}

/* A writer that stopped halfway through a row (odd count): the row is left out, said so. */
static void
test_row_busy(void)
{
	struct jp j;

	reg_up(1000, 0, 0);
	put_row("000000000000000a", LIVE_HELO, 10, 10);
	unsigned ref = put_row("000000000000000b", LIVE_DATA, 10, 10);
	struct live_slot *sl = &atomic_load(&reg.live.chunks[0])->slot[ref - 1];
	unsigned seq = atomic_load(&sl->seq);
	atomic_store(&sl->seq, seq + 1);
	char *json = sessions_json(0, 0, 100, &j);
	EXPECT_INT(top_num(&j, "count"), 1);
	EXPECT_INT(top_num(&j, "open"), 2);
	CU_ASSERT(top_is(&j, "truncated", "true"));
	free(json);
	atomic_store(&sl->seq, seq + 2);
	json = sessions_json(0, 0, 100, &j);
	EXPECT_INT(top_num(&j, "count"), 2);
	CU_ASSERT(top_is(&j, "truncated", "false"));
	free(json);
	reg_down();
}

/* Slots are reused after a close; the table grows past one chunk. */
static void
test_slots_reused_and_grown(void)
{
	enum { N = LIVE_CHUNK_SLOTS * 2 + 10 };
	static unsigned refs[N];
	struct live_counts c;
	struct live_row *rows = calloc(N, sizeof *rows);

	CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
	reg_up(1000, 0, 0);
	for (int i = 0; i < N; i++) {
		char id[17];
		snprintf(id, sizeof id, "%016d", i);
		refs[i] = put_row(id, LIVE_HELO, i, i);
	}
	EXPECT_INT(live_rows_max(&reg.live), N);
	for (int i = 0; i < N; i += 2)
		live_close(&reg.live, refs[i]);
	EXPECT_INT(live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, N, &c), N / 2);
	EXPECT_INT(c.open, N / 2);
	for (int i = 0; i < N / 2; i++)
		put_row("reused", LIVE_MAIL, 0, 0);
	EXPECT_INT(live_rows_max(&reg.live), N);	/* no new slot taken */
	EXPECT_INT(live_snapshot(&reg.live, LIVE_PHASE_BIT(LIVE_MAIL), rows, N, &c), N / 2);
	EXPECT_INT(c.open, N);
	free(rows);
	reg_down();
}

/* ---- /recent ----------------------------------------------------------------- */

static void
push_ended(unsigned txn, int64_t ended_at)
{
	struct live_ended e;

	memset(&e, 0, sizeof e);
	snprintf(e.session, sizeof e.session, "%016u", txn);
	snprintf(e.client, sizeof e.client, "unknown[192.0.2.1]:25");
	snprintf(e.sender, sizeof e.sender, "<a@b>");
	snprintf(e.outcome, sizeof e.outcome, "accepted");
	e.txn = txn;
	e.upload_ms = -1;
	e.duration_ms = 40;
	e.ended_at = ended_at;
	live_recent_push(&reg.live, &e);
}

static void
test_recent_ring_wraps(void)
{
	static const struct {
		size_t   size, pushed, limit;
		unsigned want[6];	/* txn numbers, newest first; 0 ends */
	} cases[] = {
		{ 4, 0, 0, { 0 } },
		{ 4, 3, 0, { 3, 2, 1, 0 } },
		{ 4, 4, 0, { 4, 3, 2, 1, 0 } },
		{ 4, 10, 0, { 10, 9, 8, 7, 0 } },
		{ 4, 10, 2, { 10, 9, 0 } },
		{ 1, 5, 0, { 5, 0 } },
		{ 0, 5, 0, { 0 } },
		{ 200, 330, 0, { 330, 329, 328, 327, 326, 0 } },	/* batches of 64 */
	};
	struct live_ended out[300];
	struct jp j;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		reg_up(1000, 0, cases[c].size);
		for (size_t i = 1; i <= cases[c].pushed; i++)
			push_ended((unsigned)i, (int64_t)i * 10);
		size_t n = live_recent(&reg.live, out, cases[c].limit ? cases[c].limit : 300);
		size_t want_n = cases[c].pushed < cases[c].size ? cases[c].pushed : cases[c].size;
		if (cases[c].limit && cases[c].limit < want_n)
			want_n = cases[c].limit;
		EXPECT_INT(n, want_n);
		for (size_t i = 0; i < 6 && cases[c].want[i] != 0; i++)
			EXPECT_INT(out[i].txn, cases[c].want[i]);
		for (size_t i = 1; i < n; i++)
			CU_ASSERT(out[i].txn == out[i - 1].txn - 1);
		char *json = recent_json(cases[c].limit, 10000, 0, &j);
		EXPECT_INT(top_num(&j, "count"), want_n);
		EXPECT_INT(top_num(&j, "size"), cases[c].size);
		EXPECT_INT(j.items, want_n);
		free(json);
		reg_down();
	}
}

static void
test_recent_json(void)
{
	struct live_ended e;
	struct jp j;
	/* 2026-12-01T22:21:29.500Z */
	const int64_t wall = 1796163689500LL;

	reg_up(1000, 0, 10);
	char *json = recent_json(0, 5000, wall, &j);
	EXPECT_STR(json, "{\"now_ms\":5000,\"size\":10,\"recent\":[],\"count\":0}\n");
	free(json);
	memset(&e, 0, sizeof e);
	snprintf(e.session, sizeof e.session, "5f1c0a9e3b7d2c41");
	snprintf(e.queue_id, sizeof e.queue_id, "4QX1Z2abcd");
	snprintf(e.client, sizeof e.client, "mx.example[192.0.2.1]:4321");
	snprintf(e.helo, sizeof e.helo, "mx.example");
	snprintf(e.sender, sizeof e.sender, "<a@example.test>");
	snprintf(e.outcome, sizeof e.outcome, "timeout-after-354");
	snprintf(e.reply, sizeof e.reply, "421 4.4.2");
	e.txn = 2;
	e.upload_ms = -1;
	e.duration_ms = 301234;
	e.ended_at = 3000;
	live_recent_push(&reg.live, &e);
	json = recent_json(0, 5000, wall, &j);
	EXPECT_STR(json, "{\"now_ms\":5000,\"size\":10,\"recent\":[\n"
		   "{\"session\":\"5f1c0a9e3b7d2c41\",\"txn\":2,\"queue_id\":\"4QX1Z2abcd\","
		   "\"client\":\"mx.example[192.0.2.1]:4321\",\"helo\":\"mx.example\","
		   "\"from\":\"<a@example.test>\",\"outcome\":\"timeout-after-354\","
		   "\"reply\":\"421 4.4.2\",\"upload_ms\":null,\"duration_ms\":301234,"
		   "\"ended_ms_ago\":2000,\"end_time\":\"2026-12-01T22:21:27Z\"}],\"count\":1}\n");
	free(json);
	reg_down();
}

/* A key=value line's value of key (quoted values unquoted); "" when absent. */
static void
line_value(const char *line, const char *key, char *out, size_t size)
{
	char want[64];
	size_t n = 0;

	snprintf(want, sizeof want, " %s=", key);
	const char *p = strstr(line, want);
	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(want);
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"' && n + 1 < size; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			out[n++] = *p;
		}
	} else {
		while (*p != '\0' && *p != ' ' && n + 1 < size)
			out[n++] = *p++;
	}
	out[n] = '\0';
}

/* The outcome, reply, upload and duration of /recent are those of the kind=txn line. */
static void
test_recent_as_the_log_line(void)
{
	static const struct {
		const char *what;
		enum op     last;	/* after DATA (or after a rejected RCPT) */
		int64_t     gap;	/* ms from DATA to it */
		const char *outcome;
		bool        reply;	/* one implied */
		int64_t     upload_ms;
	} cases[] = {
		{ "accepted", OP_EOM, 700, "accepted", false, 700 },
		{ "timed out", OP_CLOSE, 5000, "timeout-after-354", true, -1 },
		{ "ended", OP_CLOSE, 1000, "ended-after-354", false, -1 },
		{ "no valid recipient", OP_RCPT_REJECTED, 0, "no-valid-recipients", true, -1 },
	};
	struct jp j;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct live_ended e;
		char want[128];

		reg_up(100000, 0, 4);
		callbacks_init(&cfg, &reg);
		fake_reset(&fctx);
		last_txn_line[0] = '\0';
		fake_now = 1000;
		do_step(OP_NEGOTIATE);
		do_step(OP_CONNECT);
		do_step(OP_HELO);
		fake_now = 1100;
		do_step(OP_MAIL);
		if (cases[c].last == OP_RCPT_REJECTED) {
			do_step(OP_RCPT_REJECTED);
			fake_now = 1300;
			do_step(OP_CLOSE);
		} else {
			do_step(OP_RCPT);
			fake_now = 1200;
			do_step(OP_DATA);
			fake_now += cases[c].gap;
			if (cases[c].last == OP_EOM)
				do_step(OP_HEADER);
			do_step(cases[c].last);
			if (cases[c].last != OP_CLOSE)
				do_step(OP_CLOSE);
		}
		CU_ASSERT_FATAL(live_recent(&reg.live, &e, 1) == 1);
		EXPECT_STR(e.outcome, cases[c].outcome);
		EXPECT_INT(e.upload_ms, cases[c].upload_ms);
		snprintf(want, sizeof want, " outcome=%s ", cases[c].outcome);
		EXPECT_CONTAINS(last_txn_line, want);
		line_value(last_txn_line, "reply", want, sizeof want);
		EXPECT_STR(e.reply, want);
		CU_ASSERT_EQUAL(e.reply[0] != '\0', cases[c].reply);
		snprintf(want, sizeof want, " duration_ms=%lld ", (long long)e.duration_ms);
		EXPECT_CONTAINS(last_txn_line, want);
		if (e.upload_ms >= 0) {
			snprintf(want, sizeof want, " upload_ms=%lld ", (long long)e.upload_ms);
			EXPECT_CONTAINS(last_txn_line, want);
		}
		EXPECT_STR(e.client, "unknown[192.0.2.7]:4321");
		EXPECT_STR(e.helo, "client.test");
		EXPECT_STR(e.sender, "<a@example.test>");
		EXPECT_STR(e.queue_id, "4QX1Z2abcd");
		EXPECT_INT(e.txn, 1);
		char *json = recent_json(0, fake_now, 0, &j);
		snprintf(want, sizeof want, "\"outcome\":\"%s\"", cases[c].outcome);
		EXPECT_CONTAINS(json, want);
		free(json);
		reg_down();
	}
}

/* metrics.recent = 0: /recent answers with an empty list; the callbacks keep nothing. */
static void
test_recent_off(void)
{
	struct jp j;

	reg_up(1000, 0, 0);
	callbacks_init(&cfg, &reg);
	fake_reset(&fctx);
	fake_now = 1000;
	do_step(OP_NEGOTIATE);
	do_step(OP_CONNECT);
	do_step(OP_MAIL);
	do_step(OP_CLOSE);
	char *json = recent_json(50, 2000, 0, &j);
	EXPECT_STR(json, "{\"now_ms\":2000,\"size\":0,\"recent\":[],\"count\":0}\n");
	free(json);
	reg_down();
}

/* ---- threads (make tsan) -------------------------------------------------------- */

#define THREADS		4
#define SESSIONS_EACH	150

static atomic_bool readers_stop;
static atomic_uint reader_rounds, reader_bad;

struct worker {
	int             id;
	struct fake_ctx fake[3];	/* three sessions open at once per thread */
};

/* Each thread drives its sessions through every phase and ending, in turn. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char host[] = "[192.0.2.9]", helo[] = "t.test", from[] = "<t@example.test>";
	char to[] = "<u@example.test>", hname[] = "Subject", hvalue[] = "x";
	char *from_argv[] = { from, NULL }, *to_argv[] = { to, NULL };
	unsigned char body[8] = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(25) };

	for (int i = 0; i < SESSIONS_EACH; i++) {
		struct fake_ctx *f = &w->fake[i % 3];
		SMFICTX *c = FAKE_CTX(f);
		unsigned long pf0, pf1, pf2, pf3;

		if (f->priv != NULL)
			cb_close(c);
		fake_reset(f);
		cb_negotiate(c, 0x1ff, 0x1fffff, 0, 0, &pf0, &pf1, &pf2, &pf3);
		cb_connect(c, host, (_SOCK_ADDR *)&sin);
		cb_helo(c, helo);
		for (int t = 0; t < 1 + i % 3; t++) {
			cb_envfrom(c, from_argv);
			cb_envrcpt(c, to_argv);
			cb_data(c);
			switch ((i + t) % 4) {
			case 0:
				cb_header(c, hname, hvalue);
				cb_body(c, body, sizeof body);
				cb_eom(c);
				break;
			case 1: cb_abort(c); break;
			case 2: break;		/* the next MAIL or the close ends it */
			default: cb_eoh(c); cb_abort(c); break;
			}
		}
		if (i % 5 == 0)
			cb_close(c);
	}
	for (int k = 0; k < 3; k++)
		if (w->fake[k].priv != NULL)
			cb_close(FAKE_CTX(&w->fake[k]));
	return NULL;
}

static void *
reader_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&readers_stop)) {
		struct expose_query q = { .limit = EXPOSE_ROWS_MAX };
		struct jp j;
		size_t len;
		char *json = expose_sessions(&reg, &q, fake_now, &len);
		if (json == NULL || !json_check(json, len, &j) ||
		    top_num(&j, "count") > top_num(&j, "open"))
			atomic_fetch_add(&reader_bad, 1);
		free(json);
		json = expose_recent(&reg, 0, fake_now, 0, &len);
		if (json == NULL || !json_check(json, len, &j))
			atomic_fetch_add(&reader_bad, 1);
		free(json);
		json = expose_metrics(&reg, &len);
		free(json);
		atomic_fetch_add(&reader_rounds, 1);
	}
	return NULL;
}

static void
ignore_warning(const struct stall_view *v, const void *arg)
{
	(void)v;
	(void)arg;
}

static void
test_threads(void)
{
	static struct worker workers[THREADS];
	pthread_t threads[THREADS], reader;
	struct watchdog wd;
	struct jp j;

	/* the watchdog's clock is the real one, the callbacks' fake_now far
	 * behind it: every transaction in DATA is due at once, and again
	 * every millisecond, while the reader lists */
	reg_up(1, 1, 64);
	log_set_sink(count_only);
	fake_now = 1000;
	callbacks_init(&cfg, &reg);
	atomic_store(&readers_stop, false);
	atomic_store(&reader_rounds, 0);
	atomic_store(&reader_bad, 0);
	CU_ASSERT_FATAL(watchdog_start(&wd, &reg, ignore_warning, NULL) == 0);
	pthread_create(&reader, NULL, reader_main, NULL);
	for (int i = 0; i < THREADS; i++) {
		memset(&workers[i], 0, sizeof workers[i]);
		workers[i].id = i;
		pthread_create(&threads[i], NULL, worker_main, &workers[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	while (atomic_load(&reader_rounds) < 3)
		sched_yield();
	atomic_store(&readers_stop, true);
	pthread_join(reader, NULL);
	watchdog_stop(&wd);
	EXPECT_INT(atomic_load(&reader_bad), 0);
	char *json = sessions_json(0, 0, fake_now, &j);
	EXPECT_INT(top_num(&j, "open"), 0);
	EXPECT_INT(top_num(&j, "count"), 0);
	free(json);
	size_t in_data, stalled;
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 0);
	EXPECT_INT(stalled, 0);
	json = recent_json(0, fake_now, 0, &j);
	EXPECT_INT(top_num(&j, "count"), 64);
	free(json);
	log_set_sink(capture);
	reg_down();
	metrics_reset();
}

int
suite_live(void)
{
	CU_pSuite s = CU_add_suite("live view: /transactions and /recent", suite_setup, NULL);
	return s == NULL ||
	       !CU_add_test(s, "every phase through the callbacks", test_phases_through_callbacks) ||
	       !CU_add_test(s, "a session's row as JSON", test_session_row_json) ||
	       !CU_add_test(s, "hostile values in both documents", test_hostile_json) ||
	       !CU_add_test(s, "?phase= lists that phase only", test_phase_filter) ||
	       !CU_add_test(s, "the longest in its phase first", test_sort_order) ||
	       !CU_add_test(s, "limit and truncated", test_limit_and_truncation) ||
	       !CU_add_test(s, "20,000 rows over the 32 MiB cap", test_over_the_cap) ||
	       !CU_add_test(s, "a row its writer left half stored", test_row_busy) ||
	       !CU_add_test(s, "slots reused, the table grown", test_slots_reused_and_grown) ||
	       !CU_add_test(s, "the ring wraps, the newest first", test_recent_ring_wraps) ||
	       !CU_add_test(s, "a /recent entry as JSON", test_recent_json) ||
	       !CU_add_test(s, "/recent says what the kind=txn line says", test_recent_as_the_log_line) ||
	       !CU_add_test(s, "metrics.recent = 0", test_recent_off) ||
	       !CU_add_test(s, "callbacks on 4 threads, the watchdog and a reader", test_threads);
}
