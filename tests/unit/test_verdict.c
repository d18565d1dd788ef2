/*
 * verdict.c and summary.c. The main table is tests/data/verdicts/cases.tsv:
 * real logs (tests/data/postfix-3.7/, tests/data/verdicts/; see the README
 * there) and the verdict each smtptrace line must get, each log fed in
 * three orders (as captured, smtptrace's lines first, and smtptrace's
 * lines spread among the MTA's). The other tables are small logs written
 * in the shape of those real lines (queue ids, pids and ports changed to
 * make the point of each case): interleaved sessions, the pid join, a
 * queue id that comes back, when a verdict is printed, the cap, the quiet
 * window, and hostile values in the output.
 */
#include <stdlib.h>

#include "escape.h"
#include "summary.h"
#include "tests.h"
#include "verdict.h"

#define CASES "tests/data/verdicts/cases.tsv"
#define SENDMAIL_CASES "tests/data/sendmail-8.17/cases.tsv"

#define EXPECT_PREFIX(got, want) do { \
	const char *gp_ = (got), *wp_ = (want); \
	if (strncmp(gp_, wp_, strlen(wp_)) != 0) \
		fprintf(stderr, "\n%s:%d: got \"%.*s\",\n want \"%s\"\n", __FILE__, \
			__LINE__, (int)strlen(wp_), gp_, wp_); \
	CU_ASSERT(strncmp(gp_, wp_, strlen(wp_)) == 0); \
} while (0)
#define MAX_GOT 256

struct got_one {
	char   session[MAILLOG_SESSION_MAX];
	long long txn;
	char   outcome[MAILLOG_NAME_MAX], milter[MAILLOG_NAME_MAX];
	bool   resolved;
	int    code;
	char   enhanced[MAILLOG_ENHANCED_MAX];
	char   evidence[VERDICT_EVIDENCE_MAX];
	size_t at;			/* index of the line that settled it */
	char   kv[8192], json[8192];
};

struct got {
	size_t          n;
	size_t          at;		/* the line being fed */
	struct got_one  v[MAX_GOT];
	struct summary *summary;	/* also fed, when set */
	struct verdict_out kv, json;	/* with their memos, as verdict_run */
};

static void
collect(const struct verdict *v, void *arg)
{
	struct got *g = arg;
	struct sbuf sb;

	if (g->summary != NULL)
		summary_add(g->summary, v);
	if (g->n == MAX_GOT)
		return;
	struct got_one *o = &g->v[g->n++];
	text_copy(o->session, sizeof o->session, v->txn->session);
	o->txn = v->txn->txn;
	text_copy(o->outcome, sizeof o->outcome, v->outcome);
	text_copy(o->milter, sizeof o->milter, v->txn->outcome_name);
	o->resolved = v->resolved;
	o->code = v->code;
	text_copy(o->enhanced, sizeof o->enhanced, v->enhanced);
	text_copy(o->evidence, sizeof o->evidence, v->by_milter ? "milter" : v->evidence);
	o->at = g->at;
	sbuf_init(&sb, o->kv, sizeof o->kv);
	verdict_format(v, &g->kv, &sb);
	sbuf_init(&sb, o->json, sizeof o->json);
	verdict_format(v, &g->json, &sb);
}

/* Feed lines through the classifier into a fresh table; collect the verdicts. */
static void
run(const char *const *lines, size_t n, size_t cap, unsigned long window,
    struct got *g, struct verdict_stats *st)
{
	static struct maillog_event ev;
	struct verdict_table *t = verdict_table_create(cap, window, collect, g);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	g->n = 0;
	verdict_out_init(&g->kv, false);
	verdict_out_init(&g->json, true);
	for (size_t i = 0; i < n; i++) {
		g->at = i;
		maillog_classify(lines[i], strlen(lines[i]), &ev);
		verdict_feed(t, &ev);
	}
	g->at = n;
	verdict_finish(t);
	if (st != NULL)
		verdict_stats(t, st);
	verdict_table_free(t);
}

static const struct got_one *
find(const struct got *g, const char *session, long long txn)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->v[i].session, session) == 0 && g->v[i].txn == txn)
			return &g->v[i];
	return NULL;
}

/* ---- the real logs of cases.tsv ---------------------------------------- */

struct log {
	char  *text;
	char **lines;		/* the lines of every file, '#' comments left out */
	size_t n;
	bool  *is_txn;		/* an smtptrace kind=txn line */
	char (*keys)[2][MAILLOG_SESSION_MAX];	/* session, txn of each, in order */
	size_t ntxn;
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)size, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* "a+b": the files read one after the other. */
static bool
log_load(struct log *lg, const char *spec)
{
	static struct maillog_event ev;
	char paths[1024];
	size_t total = 0;

	memset(lg, 0, sizeof *lg);
	text_copy(paths, sizeof paths, spec);
	for (char *p = paths, *next; p != NULL; p = next) {
		size_t len;
		next = strchr(p, '+');
		if (next != NULL)
			*next++ = '\0';
		char *text = slurp(p, &len);
		if (text == NULL) {
			fprintf(stderr, "\ncannot read %s\n", p);
			return false;
		}
		lg->text = realloc(lg->text, total + len + 2);
		memcpy(lg->text + total, text, len + 1);
		total += len;
		if (total > 0 && lg->text[total - 1] != '\n')
			lg->text[total++] = '\n';
		lg->text[total] = '\0';
		free(text);
	}
	size_t cap = 1;
	for (size_t i = 0; i < total; i++)
		cap += lg->text[i] == '\n';
	lg->lines = calloc(cap, sizeof *lg->lines);
	lg->is_txn = calloc(cap, sizeof *lg->is_txn);
	lg->keys = calloc(cap, sizeof *lg->keys);
	for (char *line = lg->text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		lg->is_txn[lg->n] = maillog_classify(line, strlen(line), &ev) == MAILLOG_TXN;
		if (lg->is_txn[lg->n]) {
			text_copy(lg->keys[lg->ntxn][0], MAILLOG_SESSION_MAX, ev.txn.session);
			snprintf(lg->keys[lg->ntxn][1], MAILLOG_SESSION_MAX, "%lld", ev.txn.txn);
			lg->ntxn++;
		}
		lg->lines[lg->n++] = line;
	}
	return true;
}

static void
log_free(struct log *lg)
{
	free(lg->text);
	free(lg->lines);
	free(lg->is_txn);
	free(lg->keys);
}

enum order { AS_CAPTURED, TXN_FIRST, TXN_SPREAD, ORDERS };
static const char *const order_names[] = { "as captured", "smtptrace first", "spread" };

/*
 * The lines in one of the orders. The MTA's lines keep their order (one
 * daemon's lines always do); the j-th smtptrace line goes after
 * threshold(j) of them: 0 for TXN_FIRST, others * (j + 1) / (ntxn + 1)
 * for TXN_SPREAD.
 */
static void
order_lines(const struct log *lg, enum order o, const char **out)
{
	size_t k = 0, t = 0, seen = 0, others = lg->n - lg->ntxn;
	size_t *txn = calloc(lg->ntxn + 1, sizeof *txn);

	if (o == AS_CAPTURED || txn == NULL) {
		memcpy(out, lg->lines, lg->n * sizeof *out);
		free(txn);
		return;
	}
	for (size_t i = 0, j = 0; i < lg->n; i++)
		if (lg->is_txn[i])
			txn[j++] = i;
	for (size_t i = 0; i <= lg->n; i++) {
		while (t < lg->ntxn &&
		       (o == TXN_FIRST || others * (t + 1) / (lg->ntxn + 1) <= seen || i == lg->n))
			out[k++] = lg->lines[txn[t++]];
		if (i < lg->n && !lg->is_txn[i]) {
			out[k++] = lg->lines[i];
			seen++;
		}
	}
	free(txn);
}

struct case_row {
	char *f[9];		/* logs, k, outcome, milter, resolved, code, enhanced, evidence, note */
};

static int
check_row(const struct case_row *r, const struct log *lg, const struct got *g,
	  const char *order)
{
	size_t k = (size_t)atoi(r->f[1]);
	char want[512], got[512];

	if (k == 0 || k > lg->ntxn) {
		fprintf(stderr, "\n%s: no smtptrace line %zu\n", r->f[0], k);
		return 1;
	}
	const struct got_one *o = find(g, lg->keys[k - 1][0], atoll(lg->keys[k - 1][1]));
	snprintf(want, sizeof want, "%s %s %s %s %s", r->f[2], r->f[3], r->f[4], r->f[5], r->f[6]);
	if (o == NULL) {
		snprintf(got, sizeof got, "no verdict");
	} else {
		char code[16] = "-";
		if (o->code > 0)
			snprintf(code, sizeof code, "%d", o->code);
		snprintf(got, sizeof got, "%s %s %s %s %s", o->outcome, o->milter,
			 o->resolved ? "yes" : "no", code, o->enhanced[0] ? o->enhanced : "-");
	}
	bool evidence_ok = o != NULL && (strcmp(r->f[7], "-") == 0 ? o->evidence[0] == '\0'
					 : strstr(o->evidence, r->f[7]) != NULL);
	if (strcmp(want, got) == 0 && evidence_ok)
		return 0;
	fprintf(stderr, "\n%s #%zu (%s): got \"%s\" evidence \"%.80s\", want \"%s\" evidence \"%s\"\n",
		r->f[0], k, order, got, o ? o->evidence : "", want, r->f[7]);
	return 1;
}

/* One log, every order: one verdict per smtptrace line, each as the table says. */
static int
check_log(const struct case_row *rows, size_t nrows, int *checked)
{
	static struct got g;
	struct log lg;
	int failed = 0;

	if (!log_load(&lg, rows[0].f[0]))
		return 1;
	const char **ordered = calloc(lg.n + 1, sizeof *ordered);
	for (int o = 0; o < ORDERS; o++) {
		order_lines(&lg, (enum order)o, ordered);
		run(ordered, lg.n, VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
		if (g.n != lg.ntxn) {
			fprintf(stderr, "\n%s (%s): %zu verdicts for %zu smtptrace lines\n",
				rows[0].f[0], order_names[o], g.n, lg.ntxn);
			failed++;
		}
		for (size_t i = 0; i < nrows; i++, (*checked)++)
			failed += check_row(&rows[i], &lg, &g, order_names[o]);
	}
	if (nrows != lg.ntxn) {
		fprintf(stderr, "\n%s: %zu rows for %zu smtptrace lines\n", rows[0].f[0],
			nrows, lg.ntxn);
		failed++;
	}
	free(ordered);
	log_free(&lg);
	return failed;
}

/* A cases.tsv: every log it names, every order; at least min_logs logs and min_checked checks. */
static void
check_table(const char *path, int min_logs, int min_checked)
{
	static struct case_row rows[512];
	static char text[256 * 1024];
	size_t len, n = 0;
	int failed = 0, checked = 0, logs = 0;
	char *buf = slurp(path, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	text_copy(text, sizeof text, buf);
	free(buf);
	for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (line[0] == '#' || line[0] == '\0' || n == 512)
			continue;
		char *p = line;
		for (int f = 0; f < 9; f++) {
			rows[n].f[f] = p;
			p = f < 8 ? strchr(p, '\t') : NULL;
			if (f < 8 && p == NULL)
				CU_FAIL_FATAL("a row of cases.tsv has fewer than 9 columns");
			if (p != NULL)
				*p++ = '\0';
		}
		n++;
	}
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i; j < n && strcmp(rows[j].f[0], rows[i].f[0]) == 0; j++)
			;
		failed += check_log(&rows[i], j - i, &checked);
		logs++;
	}
	CU_ASSERT(logs >= min_logs && checked >= min_checked);
	EXPECT_INT(failed, 0);
}

static void
test_real_logs(void)
{
	check_table(CASES, 20, 3 * 100);
}

/* Sendmail 8.17's real log (tests/data/sendmail-8.17/, see its README). */
static void
test_sendmail_logs(void)
{
	check_table(SENDMAIL_CASES, 18, 3 * 57);
}

/* ---- small logs in the shape of the real lines ---------------------------- */

#define PF "Dec 01 22:31:57 mx postfix/"
#define N(a) (sizeof (a) / sizeof (a)[0])

struct want {
	const char *session;
	const char *outcome;
	bool        resolved;
	size_t      at;		/* the line that settles it; (size_t)-1: any */
};

static void
expect_verdicts(const struct got *g, const struct want *w, size_t n, const char *what)
{
	EXPECT_INT(g->n, n);
	for (size_t i = 0; i < n; i++) {
		const struct got_one *o = find(g, w[i].session, 1);
		if (o == NULL) {
			fprintf(stderr, "\n%s: no verdict for %s\n", what, w[i].session);
			CU_FAIL("a verdict is missing");
			continue;
		}
		if (strcmp(o->outcome, w[i].outcome) != 0 || o->resolved != w[i].resolved ||
		    (w[i].at != (size_t)-1 && o->at != w[i].at))
			fprintf(stderr, "\n%s: %s: got %s resolved=%d at line %zu, want %s "
				"resolved=%d at line %zu\n", what, w[i].session, o->outcome,
				o->resolved, o->at, w[i].outcome, w[i].resolved, w[i].at);
		EXPECT_STR(o->outcome, w[i].outcome);
		EXPECT_INT(o->resolved, w[i].resolved);
		if (w[i].at != (size_t)-1)
			EXPECT_INT(o->at, w[i].at);
	}
}

/* Three sessions of three smtpd processes, their lines interleaved. */
static const char *const interleaved[] = {
	PF "smtpd[101]: 1111111111A: client=unknown[192.0.2.1]:1001",
	PF "smtpd[102]: 2222222222B: client=unknown[192.0.2.2]:1002",
	PF "smtpd[103]: 3333333333C: client=unknown[192.0.2.3]:1003",
	"smtptrace[9]: 1111111111A: kind=txn session=s1 txn=1 client=unknown[192.0.2.1]:1001 from=<a@example.test> outcome=accepted upload_ms=3",
	PF "smtpd[102]: lost connection after DATA (619 bytes) from unknown[192.0.2.2]:1002",
	PF "qmgr[100]: 1111111111A: from=<a@example.test>, size=359, nrcpt=1 (queue active)",
	PF "smtpd[102]: disconnect from unknown[192.0.2.2]:1002 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4",
	PF "smtpd[103]: timeout after DATA (615 bytes) from unknown[192.0.2.3]:1003",
	"smtptrace[9]: 2222222222B: kind=txn session=s2 txn=1 client=unknown[192.0.2.2]:1002 from=<b@example.test> outcome=ended-after-354 in_data_ms=302",
	PF "smtp[104]: 1111111111A: to=<x@example.test>, relay=mx.example.test[198.51.100.1]:25, delay=0.4, delays=0.01/0/0.2/0.19, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
	PF "smtpd[101]: 4444444444D: client=unknown[192.0.2.1]:1001",
	"smtptrace[9]: 3333333333C: kind=txn session=s3 txn=1 client=unknown[192.0.2.3]:1003 from=<c@example.test> outcome=timeout-after-354 in_data_ms=5004",
	PF "smtpd[103]: disconnect from unknown[192.0.2.3]:1003 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4",
	PF "smtpd[101]: lost connection after DATA (77 bytes) from unknown[192.0.2.1]:1001",
	"smtptrace[9]: 4444444444D: kind=txn session=s4 txn=1 client=unknown[192.0.2.1]:1001 from=<d@example.test> outcome=ended-after-354 in_data_ms=1",
	PF "qmgr[100]: 1111111111A: removed",
};

static void
test_interleaved(void)
{
	static struct got g;
	const struct want w[] = {
		{ "s1", "accepted", true, 9 },		/* at its first delivery line */
		{ "s2", "abandoned-after-354", true, 8 },	/* the pid join, milter line last */
		{ "s3", "timeout-after-354", true, 11 },
		{ "s4", "abandoned-after-354", true, 14 },	/* pid 101's second session */
	};

	run(interleaved, N(interleaved), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, w, N(w), "interleaved");
}

/* A refusal logged during the upload is final only when the smtpd went on. */
static const char *const upload_refusal[] = {
	"smtptrace[9]: 83711A7233E: kind=txn session=s1 txn=1 client=unknown[127.0.0.1]:54312 from=<a@example.test> outcome=ended-after-354 in_data_ms=5",
	PF "smtpd[18504]: connect from unknown[127.0.0.1]:54312",
	PF "smtpd[18504]: 83711A7233E: client=unknown[127.0.0.1]:54312",
	PF "cleanup[18506]: 83711A7233E: reject: header Subject: TRUTH-REJECT-HEADER from unknown[127.0.0.1]:54312; from=<a@example.test> to=<b@example.test> proto=ESMTP helo=<h.test>: 5.7.1 Header rejected by truth test",
	PF "smtpd[18504]: disconnect from unknown[127.0.0.1]:54312 ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5",
};

/* The same, but the client left before its dot: it never got the 550. */
static const char *const upload_refusal_lost[] = {
	"smtptrace[9]: D276EA72011: kind=txn session=s1 txn=1 client=unknown[127.0.0.1]:52258 from=<a@example.test> outcome=ended-after-354 in_data_ms=201",
	PF "smtpd[7384]: D276EA72011: client=unknown[127.0.0.1]:52258",
	PF "smtpd[7384]: lost connection after DATA (4180 bytes) from unknown[127.0.0.1]:52258",
	PF "cleanup[7382]: D276EA72011: reject: header Subject: REJECTME lost from unknown[127.0.0.1]:52258; from=<a@example.test> to=<b@example.test> proto=ESMTP helo=<h.test>: 5.7.1 spam header here",
	PF "smtpd[7384]: disconnect from unknown[127.0.0.1]:52258 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4",
};

static void
test_settled_when_complete(void)
{
	static struct got g;
	const struct want refused = { "s1", "refused-after-354", true, 4 };
	struct want lost = { "s1", "abandoned-after-354", true, 2 };

	run(upload_refusal, N(upload_refusal), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, &refused, 1, "refusal during the upload");
	EXPECT_STR(g.v[0].enhanced, "5.7.1");
	EXPECT_CONTAINS(g.v[0].kv, " reply=\"5xx 5.7.1 Header rejected by truth test\"");
	/* the lost connection is final: it wins in either order of the two lines */
	run(upload_refusal_lost, N(upload_refusal_lost), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, &lost, 1, "refusal, then lost connection");
	EXPECT_CONTAINS(g.v[0].kv, " bytes=4180 ");
	const char *swapped[N(upload_refusal_lost)];
	memcpy(swapped, upload_refusal_lost, sizeof swapped);
	swapped[2] = upload_refusal_lost[3];
	swapped[3] = upload_refusal_lost[2];
	run(swapped, N(swapped), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	lost = (struct want){ "s1", "abandoned-after-354", true, 3 };
	expect_verdicts(&g, &lost, 1, "lost connection, then the refusal");
}

/* A short queue id comes back before its first transaction was settled. */
static const char *const qid_reused[] = {
	PF "smtpd[201]: 7C91AA76402: client=unknown[192.0.2.7]:2001",
	"smtptrace[9]: 7C91AA76402: kind=txn session=s1 txn=1 client=unknown[192.0.2.7]:2001 from=<a@example.test> outcome=accepted upload_ms=1",
	PF "smtpd[202]: 7C91AA76402: client=unknown[192.0.2.8]:2002",
	PF "qmgr[100]: 7C91AA76402: from=<b@example.test>, size=359, nrcpt=1 (queue active)",
	/* a delivery line without relay= and dsn= (a local(8)-like one) */
	PF "local[300]: 7C91AA76402: to=<b@example.test>, status=sent (delivered to mailbox)",
	"smtptrace[9]: 7C91AA76402: kind=txn session=s2 txn=1 client=unknown[192.0.2.8]:2002 from=<b@example.test> outcome=accepted upload_ms=1",
	PF "qmgr[100]: 7C91AA76402: removed",
};

static void
test_queue_id_reused(void)
{
	static struct got g;
	const struct want w[] = {
		{ "s1", "accepted", false, 2 },	/* settled as it stood */
		{ "s2", "accepted", true, 5 },	/* at its milter line: delivered already */
	};

	run(qid_reused, N(qid_reused), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, w, N(w), "queue id reused");
	const struct got_one *s2 = find(&g, "s2", 1);
	EXPECT_CONTAINS(s2 ? s2->kv : "", " delivery=sent evidence=");
}

/* Past the cap the least recently touched entry is settled early, and counted. */
static void
test_cap(void)
{
	static struct got g;
	struct verdict_stats st;
	const char *const lines[] = {
		"smtptrace[9]: AAAAAAAAAA1: kind=txn session=s1 txn=1 client=x[192.0.2.1]:1 outcome=ended-after-354",
		"smtptrace[9]: AAAAAAAAAA2: kind=txn session=s2 txn=1 client=x[192.0.2.2]:2 outcome=ended-after-354",
		"smtptrace[9]: AAAAAAAAAA3: kind=txn session=s3 txn=1 client=x[192.0.2.3]:3 outcome=ended-after-354",
		PF "cleanup[7]: AAAAAAAAAA1: milter-reject: END-OF-MESSAGE from x[192.0.2.1]: 5.7.1 no; from=<> to=<a> proto=ESMTP helo=<h>",
		PF "cleanup[7]: AAAAAAAAAA3: milter-reject: END-OF-MESSAGE from x[192.0.2.3]: 5.7.1 no; from=<> to=<a> proto=ESMTP helo=<h>",
	};
	const struct want w[] = {
		{ "s1", "ended-after-354", false, 2 },	/* pushed out by s3 */
		{ "s2", "ended-after-354", false, 3 },	/* pushed out by s1's Postfix line */
		{ "s3", "refused-after-354", true, 4 },
	};

	run(lines, N(lines), 2, VERDICT_WINDOW, &g, &st);
	expect_verdicts(&g, w, N(w), "cap 2");
	EXPECT_INT(st.settled_early, 2);
	EXPECT_INT(st.early_verdicts, 2);
	run(lines, N(lines), 3, VERDICT_WINDOW, &g, &st);
	EXPECT_INT(st.settled_early, 0);
	EXPECT_INT(find(&g, "s1", 1) != NULL && find(&g, "s1", 1)->resolved, 1);
}

/* A transaction quiet for the window is settled as it stands. */
static void
test_window(void)
{
	static struct got g;
	struct verdict_stats st;
	const char *const lines[] = {
		"smtptrace[9]: BBBBBBBBBB1: kind=txn session=s1 txn=1 client=x[192.0.2.1]:1 outcome=accepted upload_ms=5",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "qmgr[100]: BBBBBBBBBB1: from=<a@example.test>, size=359, nrcpt=1 (queue active)",
	};
	const struct want w = { "s1", "accepted", false, 3 };

	run(lines, N(lines), VERDICT_CAP, 3, &g, &st);
	expect_verdicts(&g, &w, 1, "window 3");
	EXPECT_INT(st.expired, 1);
	run(lines, N(lines), VERDICT_CAP, 10, &g, &st);
	EXPECT_INT(st.expired, 0);
	EXPECT_INT(g.n == 1 && g.v[0].resolved, 1);	/* the queue line came in time */

	/* a data timeout minutes after "client=": the pid outlives the window */
	const char *const slow[] = {
		PF "smtpd[500]: 6EAA5A72379: client=unknown[127.0.0.1]:55712",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[1]: connect from x[192.0.2.9]",
		PF "smtpd[500]: timeout after DATA (615 bytes) from unknown[127.0.0.1]:55712",
		"smtptrace[9]: 6EAA5A72379: kind=txn session=s2 txn=1 client=unknown[127.0.0.1]:55712 outcome=ended-after-354 in_data_ms=300004",
	};
	const struct want late = { "s2", "timeout-after-354", true, 6 };
	run(slow, N(slow), VERDICT_CAP, 3, &g, &st);
	expect_verdicts(&g, &late, 1, "timeout after the window");
}

/*
 * Sendmail's two rules (verdict.c): its first delivery line decides
 * "accepted"; a refused recipient is no-valid-recipients only when the
 * "from=<..>, size=0" line that ends the transaction counts no accepted
 * recipient. Lines in the shape of tests/data/sendmail-8.17/ (queue ids
 * changed to make four transactions).
 */
#define SM "Dec  1 23:10:33 mx sm-mta["
#define SM_REJECT(q, r) SM "701]: " q ": ruleset=check_rcpt, arg1=<" r ">, relay=localhost " \
	"[127.0.0.1], reject=550 5.2.1 <" r ">... Mailbox disabled for this recipient"
#define SM_FROM(q, size, n) SM "701]: " q ": from=<a@example.test>, size=" size ", class=0, " \
	"nrcpts=" n ", proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]"
#define SM_TXN(q, s, o) "smtptrace[9]: " q ": kind=txn session=" s " txn=1 " \
	"client=localhost[127.0.0.1]:1 from=<a@example.test> outcome=" o

static const char *const sendmail_join[] = {
	/* s1: one recipient refused, one accepted, then RSET */
	SM_REJECT("6B1NAAAA000701", "blocked@example.test"),
	SM_FROM("6B1NAAAA000701", "0", "1"),
	SM_TXN("6B1NAAAA000701", "s1", "aborted-before-data"),
	/* s2: one refused, the message queued and delivered */
	SM_REJECT("6B1NBBBB000701", "blocked@example.test"),
	SM_FROM("6B1NBBBB000701", "1200", "1"),
	SM_TXN("6B1NBBBB000701", "s2", "accepted"),
	SM "703]: 6B1NBBBB000701: to=<b@example.test>, delay=00:00:00, xdelay=00:00:00, "
	"mailer=esmtp, pri=31218, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (Ok)",
	/* s3: every recipient refused, the milter's line first */
	SM_TXN("6B1NCCCC000701", "s3", "aborted-before-data"),
	SM_REJECT("6B1NCCCC000701", "blocked@example.test"),
	SM_REJECT("6B1NCCCC000701", "blocked2@example.test"),
	SM_FROM("6B1NCCCC000701", "0", "0"),
	/* s4: a refused message's recipients (no mailer=): nothing decides */
	SM_TXN("6B1NDDDD000701", "s4", "accepted"),
	SM "701]: 6B1NDDDD000701: to=<b@example.test>, delay=00:00:00, pri=31185, "
	"stat=Rejected by test milter",
};

static void
test_sendmail_join(void)
{
	static struct got g;
	const struct want w[] = {
		{ "s1", "aborted-before-data", false, 2 },	/* ended by from=, undone */
		{ "s2", "accepted", true, 6 },			/* at its delivery line */
		{ "s3", "no-valid-recipients", true, 10 },	/* at nrcpts=0 */
		{ "s4", "accepted", false, N(sendmail_join) },	/* at the end */
	};

	run(sendmail_join, N(sendmail_join), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, w, N(w), "Sendmail join");
	const struct got_one *s3 = find(&g, "s3", 1);
	EXPECT_CONTAINS(s3 ? s3->kv : "", " code=550 enhanced=5.2.1 reply=\"550 5.2.1 "
			"<blocked@example.test>... Mailbox disabled for this recipient\" ");
	const struct got_one *s2 = find(&g, "s2", 1);
	EXPECT_CONTAINS(s2 ? s2->kv : "", " reply=\"250 2.0.0 6B1NBBBB000701 Message accepted "
			"for delivery\" ");
	EXPECT_CONTAINS(s2 ? s2->kv : "", " delivery=Sent dsn=2.0.0 ");
}

/* A NOQUEUE line meets a refused DATA by address and sender, not another port. */
static void
test_noqueue_join(void)
{
	static struct got g;
	const char *const lines[] = {
		PF "smtpd[5]: CC290A72011: reject: DATA from unknown[192.0.2.5]:2000: 554 5.7.1 <x@example.test>: Sender address rejected: no; from=<x@example.test> to=<b@example.test> proto=ESMTP helo=<h>",
		"smtptrace[9]: NOQUEUE: kind=txn session=s1 txn=1 client=unknown[192.0.2.5]:1000 from=<x@example.test> outcome=aborted-before-data",
		"smtptrace[9]: NOQUEUE: kind=txn session=s2 txn=1 client=unknown[192.0.2.5]:2000 from=<x@example.test> outcome=aborted-before-data",
	};
	const struct want w[] = {
		{ "s1", "aborted-before-data", false, 3 },	/* another port: not joined */
		{ "s2", "refused-at-data", true, 2 },
	};

	run(lines, N(lines), VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	expect_verdicts(&g, w, N(w), "NOQUEUE join");
	EXPECT_CONTAINS(find(&g, "s2", 1) ? find(&g, "s2", 1)->kv : "", "queue_id=CC290A72011 ");
}

/* ---- the output line ------------------------------------------------------ */

/*
 * One newline, at the end; no control byte (nor DEL) before it; no 8-bit
 * byte either unless utf8 (JSON keeps well-formed UTF-8, escape.h).
 */
static bool
one_clean_line(const char *s, bool utf8)
{
	size_t n = strlen(s);

	if (n == 0 || s[n - 1] != '\n')
		return false;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			return false;
	}
	return true;
}

/* key=value pairs, values bare or "quoted" with escapes, to the end of the line. */
static bool
kv_parses(const char *s)
{
	while (*s != '\n' && *s != '\0') {
		const char *k = s;
		while ((*s >= 'a' && *s <= 'z') || *s == '_')
			s++;
		if (s == k || *s++ != '=')
			return false;
		if (*s == '"') {
			for (s++; *s != '"'; s++)
				if (*s == '\0' || (*s == '\\' && *++s == '\0'))
					return false;
			s++;
		} else {
			while (*s != ' ' && *s != '\n' && *s != '\0')
				if (*s == '"' || *s++ == '\\')
					return false;
		}
		if (*s == ' ')
			s++;
		else if (*s != '\n')
			return false;
	}
	return true;
}

/* A JSON string's escapes and the object's braces, outside strings, balance. */
static bool
json_balanced(const char *s)
{
	int depth = 0;

	if (*s != '{')
		return false;
	for (; *s != '\n' && *s != '\0'; s++) {
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\0' || *s == '\n')
					return false;
				if (*s == '\\' && strchr("\"\\/bfnrtu", *++s) == NULL)
					return false;
			}
		} else if (*s == '{') {
			depth++;
		} else if (*s == '}' && --depth < 0) {
			return false;
		}
	}
	return depth == 0 && s[-1] == '}';
}

static void
test_hostile_output(void)
{
	static struct got g;
	static char milter[100 * 1024];
	static char postfix[4096];
	struct sbuf sb;

	sbuf_init(&sb, milter, sizeof milter);
	sbuf_puts(&sb, "smtptrace[9]: NOQUEUE: kind=txn session=\"s\\\"1\" txn=1 client=\"x\\\\y "
		  "[192.0.2.5]:7\" outcome=aborted-before-data from=\"<\\xc3\\xa9\\\"x\\r\\n");
	for (int i = 0; i < 70 * 1024; i++)
		sbuf_putc(&sb, "\\\"x\xff "[i % 5]);
	sbuf_puts(&sb, "@example.test>\"");
	CU_ASSERT_FALSE_FATAL(sb.overflow);
	sbuf_init(&sb, postfix, sizeof postfix);
	sbuf_puts(&sb, PF "smtpd[5]: 4ABCDE: reject: DATA from x[192.0.2.5]:7: 554 5.7.1 "
		  "\"quoted\" \\ back \xc3\xa9 \x01 text; from=<x> to=<b> proto=ESMTP helo=<h>");
	const char *lines[] = { postfix, milter };	/* joined by address and port */
	run(lines, 2, VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	EXPECT_INT(g.n, 1);
	if (g.n != 1)
		return;
	CU_ASSERT(one_clean_line(g.v[0].kv, false));
	CU_ASSERT(kv_parses(g.v[0].kv));
	CU_ASSERT(one_clean_line(g.v[0].json, true));
	CU_ASSERT(json_balanced(g.v[0].json));
	CU_ASSERT(strlen(g.v[0].kv) < 8000 && strlen(g.v[0].json) < 8000);
	EXPECT_CONTAINS(g.v[0].kv, "from=\"<\\xc3\\xa9\\\"x\\r\\n");
	EXPECT_CONTAINS(g.v[0].json, "\"from\":\"<\xc3\xa9\\\"x\\r\\n\\\"x\\u00ff ");
	EXPECT_CONTAINS(g.v[0].kv, "\\\"quoted\\\" \\\\ back \\xc3\\xa9 \\x01 text");
	/* the checkers themselves can fail */
	CU_ASSERT_FALSE(one_clean_line("a\nb\n", true));
	CU_ASSERT_FALSE(one_clean_line("\xc3\xa9\n", false));
	CU_ASSERT_FALSE(kv_parses("a=\"unclosed\n"));
	CU_ASSERT_FALSE(kv_parses("a=b\"c\n"));
	CU_ASSERT_FALSE(json_balanced("{\"a\":\"b}\n"));
}

/* The fields, their order and their forms; values from one verdict. */
static void
test_format(void)
{
	struct maillog_txn m = {
		.session = "5f1c0a9e3b7d2c41", .txn = 2, .client = "mx.example.net[192.0.2.1]:4000",
		.from = "<a b@example.net>", .outcome = OUTCOME_ENDED_AFTER_354,
		.outcome_name = "ended-after-354", .upload_ms = -1, .in_data_ms = 30,
		.stalled = true, .rcpt = 1, .rcpt_rejected = 0, .reply_code = -1,
	};
	struct verdict v = {
		.queue_id = "4ABC12DEF", .txn = &m, .outcome = "refused-after-354",
		.outcome_id = OUTCOME_REFUSED_AFTER_354, .resolved = true, .code = -1,
		.enhanced = "5.7.1", .reply = "5xx 5.7.1 no", .bytes = -1, .status = "",
		.dsn = "", .relay = "", .evidence = "4ABC12DEF: reject: body x",
	};
	static struct verdict_out kv, json;
	char out[8192];
	struct sbuf sb;

	verdict_out_init(&kv, false);
	verdict_out_init(&json, true);
	sbuf_init(&sb, out, sizeof out);
	verdict_format(&v, &kv, &sb);
	EXPECT_PREFIX(out, "queue_id=4ABC12DEF session=5f1c0a9e3b7d2c41 txn=2 "
		      "client=mx.example.net[192.0.2.1]:4000 from=\"<a b@example.net>\" "
		      "outcome=refused-after-354 milter_outcome=ended-after-354 resolved=yes "
		      "enhanced=5.7.1 reply=\"5xx 5.7.1 no\" in_data_ms=30 stalled=yes "
		      "evidence=\"4ABC12DEF: reject: body x\" explain=\"");
	EXPECT_CONTAINS(out, outcome_verdict_text(OUTCOME_REFUSED_AFTER_354));
	EXPECT_CONTAINS(out, ". 5.7.1: permanent failure");
	sbuf_init(&sb, out, sizeof out);
	verdict_format(&v, &json, &sb);
	EXPECT_PREFIX(out, "{\"queue_id\":\"4ABC12DEF\",\"session\":\"5f1c0a9e3b7d2c41\","
		      "\"txn\":2,\"client\":\"mx.example.net[192.0.2.1]:4000\",\"from\":\"<a b@example.net>\","
		      "\"outcome\":\"refused-after-354\",\"milter_outcome\":\"ended-after-354\","
		      "\"resolved\":true,\"code\":null,\"enhanced\":\"5.7.1\",\"reply\":\"5xx 5.7.1 no\","
		      "\"bytes\":null,\"upload_ms\":null,\"in_data_ms\":30,\"stalled\":true,"
		      "\"delivery\":null,\"evidence\":\"4ABC12DEF: reject: body x\",\"explain\":\"");
	/* unresolved, NOQUEUE, delivered */
	v.queue_id = "";
	v.resolved = false;
	v.status = "sent";
	v.dsn = "2.0.0";
	v.relay = "r[198.51.100.1]:25";
	sbuf_init(&sb, out, sizeof out);
	verdict_format(&v, &kv, &sb);
	EXPECT_CONTAINS(out, "queue_id=NOQUEUE ");
	EXPECT_CONTAINS(out, " resolved=no ");
	EXPECT_CONTAINS(out, " delivery=sent dsn=2.0.0 relay=r[198.51.100.1]:25 ");
	EXPECT_CONTAINS(out, "explain=\"no MTA line settled it; smtptrace saw: ");
	sbuf_init(&sb, out, sizeof out);
	verdict_format(&v, &json, &sb);
	EXPECT_CONTAINS(out, "{\"queue_id\":null,");
	EXPECT_CONTAINS(out, "\"delivery\":{\"status\":\"sent\",\"dsn\":\"2.0.0\",\"relay\":\"r[198.51.100.1]:25\"}");
}

/* The memo gives back the explanation it was asked for, nothing else. */
static void
test_format_memo(void)
{
	static struct verdict_out json;
	struct maillog_txn m = { .session = "s", .txn = 1, .outcome = OUTCOME_ENDED_AFTER_354,
				 .outcome_name = "ended-after-354", .upload_ms = -1,
				 .in_data_ms = -1, .rcpt = -1, .rcpt_rejected = -1 };
	struct verdict v = { .queue_id = "", .txn = &m, .outcome = "refused-after-354",
			     .outcome_id = OUTCOME_REFUSED_AFTER_354, .code = -1,
			     .enhanced = "5.7.1", .reply = "", .bytes = -1, .status = "",
			     .dsn = "", .relay = "", .evidence = "" };
	char out[8192], again[8192];
	struct sbuf sb;

	verdict_out_init(&json, true);
	sbuf_init(&sb, out, sizeof out);
	verdict_format(&v, &json, &sb);
	EXPECT_CONTAINS(out, "\"explain\":\"no MTA line settled it; smtptrace saw: ");
	sbuf_init(&sb, again, sizeof again);
	verdict_format(&v, &json, &sb);
	EXPECT_STR(again, out);
	v.enhanced = "4.7.1";
	sbuf_init(&sb, again, sizeof again);
	verdict_format(&v, &json, &sb);
	EXPECT_CONTAINS(again, ". 4.7.1: transient failure");
	v.resolved = true;
	sbuf_init(&sb, again, sizeof again);
	verdict_format(&v, &json, &sb);
	CU_ASSERT(strstr(again, "no MTA line settled it") == NULL);
	EXPECT_CONTAINS(again, outcome_verdict_text(OUTCOME_REFUSED_AFTER_354));
}

/* ---- the summary ---------------------------------------------------------- */

static bool
fits_80(const char *report)
{
	for (const char *l = report, *nl; *l != '\0'; l = nl + 1) {
		nl = strchr(l, '\n');
		if (nl == NULL || nl - l > 80) {
			fprintf(stderr, "\nover 80 columns or unterminated: %.100s\n", l);
			return false;
		}
	}
	return true;
}

/* The count on the report's line that starts with label. */
static long
count_of(const char *report, const char *label)
{
	char start[128];
	snprintf(start, sizeof start, "\n  %s ", label);
	const char *p = strstr(report, start);
	return p == NULL ? -1 : strtol(p + strlen(start), NULL, 10);
}

static void
test_summary_real(void)
{
	static struct got g;
	static char report[64 * 1024];
	struct sbuf sb;
	struct log lg;

	CU_ASSERT_FATAL(log_load(&lg, "tests/data/verdicts/run-kv.maillog+"
				 "tests/data/verdicts/run-kv.milter.log"));
	g.summary = summary_create();
	run((const char *const *)lg.lines, lg.n, VERDICT_CAP, VERDICT_WINDOW, &g, NULL);
	sbuf_init(&sb, report, sizeof report);
	summary_report(g.summary, &sb);
	summary_free(g.summary);
	g.summary = NULL;
	log_free(&lg);
	CU_ASSERT_FALSE(sb.overflow);
	CU_ASSERT(fits_80(report));
	EXPECT_CONTAINS(report, "\nTransactions                                     20       %\n");
	EXPECT_INT(count_of(report, "settled by the MTA's log"), 18);
	EXPECT_INT(count_of(report, "settled by what smtptrace saw"), 1);
	EXPECT_INT(count_of(report, "unresolved (no deciding MTA line)"), 1);
	EXPECT_INT(count_of(report, "refused-after-354"), 8);
	EXPECT_INT(count_of(report, "accepted"), 4);
	EXPECT_INT(count_of(report, "abandoned-after-354"), 2);
	EXPECT_INT(count_of(report, "5xx 5.7.1"), 6);
	EXPECT_INT(count_of(report, "552 5.3.4"), 1);
	EXPECT_INT(count_of(report, "554 5.7.1"), 1);
	EXPECT_CONTAINS(report, "\n  552 5.3.4 ");
	EXPECT_CONTAINS(report, "e.g. \"552 5.3.4 Error: message file too big\"\n");
	EXPECT_INT(count_of(report, "unknown[127.0.0.1]"), 0);	/* stalled 0 */
	EXPECT_CONTAINS(report, "\n  unknown[127.0.0.1]                            0         2        1        3\n");
	EXPECT_INT(count_of(report, "5.7.1"), 2);		/* rejected recipients */
}

static void
add_upload(struct summary *s, const char *client, long long upload_ms, int outcome)
{
	struct maillog_txn m = { .session = "s", .txn = 1, .outcome = outcome,
				 .upload_ms = upload_ms, .in_data_ms = -1, .rcpt_rejected = 0 };
	struct verdict v = { .queue_id = "", .txn = &m, .outcome = outcome_name(outcome),
			     .outcome_id = outcome, .resolved = true, .code = -1,
			     .enhanced = "", .reply = "", .bytes = -1, .status = "",
			     .dsn = "", .relay = "", .evidence = "x" };
	text_copy(m.client, sizeof m.client, client);
	summary_add(s, &v);
}

static long
ms_after(const char *report, const char *label)
{
	const char *p = strstr(report, label);
	return p == NULL ? -1 : strtol(p + strlen(label), NULL, 10);
}

static void
test_summary_numbers(void)
{
	static char report[64 * 1024];
	struct summary *s = summary_create();
	struct sbuf sb;
	char name[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int i = 1000; i >= 1; i--)
		add_upload(s, "ok[192.0.2.1]:1", i, OUTCOME_ACCEPTED);
	/* more clients than tracked, then one that times out 50 times */
	for (int i = 0; i < SUMMARY_CLIENTS + 44; i++) {
		snprintf(name, sizeof name, "c%d[198.51.100.%d]:25", i, i % 250);
		add_upload(s, name, -1, OUTCOME_ABANDONED_AFTER_354);
	}
	for (int i = 0; i < 50; i++)
		add_upload(s, "big[192.0.2.250]:9", -1, OUTCOME_TIMEOUT_AFTER_354);
	sbuf_init(&sb, report, sizeof report);
	summary_report(s, &sb);
	summary_free(s);
	CU_ASSERT(fits_80(report));
	/* within one bucket (1/16 of a power of two) above the true value */
	long p50 = ms_after(report, "p50 "), p90 = ms_after(report, "p90 "),
	     p99 = ms_after(report, "p99 ");
	CU_ASSERT(p50 >= 500 && p50 <= 532);
	CU_ASSERT(p90 >= 900 && p90 <= 957);
	CU_ASSERT(p99 >= 990 && p99 <= 1000);
	EXPECT_INT(ms_after(report, "max "), 1000);
	/* the top client first, its count never below the truth */
	const char *row = strstr(report, "  big[192.0.2.250] ");
	const char *first = strstr(report, "total\n");
	CU_ASSERT(row != NULL && first != NULL && row == first + 6);
	EXPECT_CONTAINS(report, "(more clients than tracked");
	long total = -1;
	if (row != NULL)
		sscanf(row + 40, "%*u %*u %*u %ld", &total);
	CU_ASSERT(total >= 50 && total <= 51);
}

int
suite_verdict(void)
{
	CU_pSuite s = CU_add_suite("verdicts (the join) and the summary", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "real logs, three orders (tests/data/verdicts/cases.tsv)", test_real_logs) ||
	       !CU_add_test(s, "Sendmail's real logs, three orders (tests/data/sendmail-8.17/cases.tsv)",
			    test_sendmail_logs) ||
	       !CU_add_test(s, "interleaved sessions, the pid join", test_interleaved) ||
	       !CU_add_test(s, "settled when the evidence is complete", test_settled_when_complete) ||
	       !CU_add_test(s, "a queue id comes back", test_queue_id_reused) ||
	       !CU_add_test(s, "the cap", test_cap) ||
	       !CU_add_test(s, "the quiet window", test_window) ||
	       !CU_add_test(s, "NOQUEUE joined by address, sender and port", test_noqueue_join) ||
	       !CU_add_test(s, "Sendmail: a delivery decides, refused recipients wait",
			    test_sendmail_join) ||
	       !CU_add_test(s, "hostile values: one clean line", test_hostile_output) ||
	       !CU_add_test(s, "the output fields", test_format) ||
	       !CU_add_test(s, "the explanation memo", test_format_memo) ||
	       !CU_add_test(s, "summary of a real run", test_summary_real) ||
	       !CU_add_test(s, "summary percentiles and top clients", test_summary_numbers);
}
