/*
 * callbacks.c driven through the fake libmilter seam: what a real MTA
 * sends, in its order, with exact times; the log lines and header edits
 * that come out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/un.h>

#include "callbacks.h"
#include "cfgstore.h"
#include "fake_mta.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "tests.h"

#define LINES_MAX 16

static struct config cfg;
static struct fake_ctx fctx;
static SMFICTX *ctx = FAKE_CTX(&fctx);
static char lines[LINES_MAX][16384];
static int nlines;

static char warning[1024];

static void
capture(int priority, const char *line)
{
	if (priority == LOG_WARNING)
		snprintf(warning, sizeof warning, "%s", line);
	if (priority != LOG_INFO || nlines >= LINES_MAX)
		return;
	snprintf(lines[nlines++], sizeof lines[0], "%s", line);
}

static int
setup(void)
{
	config_defaults(&cfg);
	snprintf(cfg.header_authserv_id, sizeof cfg.header_authserv_id, "mx.test");
	cfg.mta_data_timeout = 5;
	cfg.mta_timeout_tolerance = 1;
	log_set_sink(capture);
	callbacks_init(&cfg, NULL);
	return 0;
}

static const unsigned long all_actions = 0x1ff;
static const unsigned long all_steps = 0x1fffff;

static void
start(void)
{
	unsigned long pf0, pf1, pf2, pf3;

	fake_reset(&fctx);
	nlines = 0;
	fake_now = 1000;
	cfgstore_publish(&cfg);		/* what the case set in cfg */
	cb_negotiate(ctx, all_actions, all_steps, 0, 0, &pf0, &pf1, &pf2, &pf3);
}

static void
connect_helo_mail(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4321) };
	char host[] = "[127.0.0.1]", helo[] = "client.test";
	char from[] = "<a@example.test>";
	char *argv[] = { from, NULL };

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_EQUAL(cb_connect(ctx, host, (_SOCK_ADDR *)&sin), SMFIS_CONTINUE);
	fake_now = 1012;
	CU_ASSERT_EQUAL(cb_helo(ctx, helo), SMFIS_CONTINUE);
	fake_now = 1031;
	CU_ASSERT_EQUAL(cb_envfrom(ctx, argv), SMFIS_CONTINUE);
}

static void
rcpt(const char *addr, const char *rejected_status, const char *text)
{
	char a[256];
	char *argv[] = { a, NULL };

	snprintf(a, sizeof a, "%s", addr);
	fake_macro(&fctx, "{rcpt_mailer}", rejected_status ? "error" : "smtp");
	fake_macro(&fctx, "{rcpt_host}", rejected_status ? rejected_status : "example.test");
	fake_macro(&fctx, "{rcpt_addr}", rejected_status ? text : addr);
	CU_ASSERT_EQUAL(cb_envrcpt(ctx, argv), SMFIS_CONTINUE);
}

static void
content(int64_t at, const char *forged)
{
	char subj[] = "Subject", hi[] = "hi", own[] = "X-SMTP-Trace";
	char fv[256];
	unsigned char body[100] = { 0 };

	fake_now = at;
	CU_ASSERT_EQUAL(cb_header(ctx, subj, hi), SMFIS_NOREPLY);
	if (forged != NULL) {
		snprintf(fv, sizeof fv, "%s", forged);
		cb_header(ctx, own, fv);
		cb_header(ctx, own, fv);
	}
	CU_ASSERT_EQUAL(cb_eoh(ctx), SMFIS_NOREPLY);
	/* always answered: libmilter hands body bytes inside an end-of-message
	 * packet to this callback too, and on NOREPLY it would skip the EOM
	 * callback and leave the MTA waiting */
	CU_ASSERT_EQUAL(cb_body(ctx, body, sizeof body), SMFIS_CONTINUE);
}

/* RFC 5322 unfolding: drop each line break (the white space after it stays). */
static void
unfold(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < size; in++)
		if (*in != '\n')
			out[n++] = *in;
	out[n] = '\0';
}

static void
test_negotiation(void)
{
	unsigned long pf0, pf1, pf2, pf3;

	fake_reset(&fctx);
	CU_ASSERT_EQUAL(cb_negotiate(ctx, all_actions, all_steps, 0, 0,
				     &pf0, &pf1, &pf2, &pf3), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(pf0, SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
	CU_ASSERT(pf1 & SMFIP_RCPT_REJ);
	/* no-reply only where Postfix flushes soon after: the header stages
	 * (not the body: see the EOM-with-body case below) */
	CU_ASSERT_EQUAL(pf1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
			       SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_HDR |
			       SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_UNKN),
			SMFIP_NR_HDR | SMFIP_NR_EOH);
	/* never ask to skip a stage we observe */
	CU_ASSERT_EQUAL(pf1 & (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL |
			       SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |
			       SMFIP_NOEOH | SMFIP_NODATA), 0);
	/* exactly the macros the callbacks read, at the stage they read them */
	EXPECT_INT(fctx.symlists, 7);
	EXPECT_STR(fctx.symlist[SMFIM_CONNECT], "j v");
	EXPECT_STR(fctx.symlist[SMFIM_HELO], "{tls_version}");
	EXPECT_STR(fctx.symlist[SMFIM_ENVFROM], "i {auth_authen} {tls_version}");
	EXPECT_STR(fctx.symlist[SMFIM_ENVRCPT], "i {rcpt_mailer} {rcpt_host} {rcpt_addr}");
	EXPECT_STR(fctx.symlist[SMFIM_DATA], "i");
	EXPECT_STR(fctx.symlist[SMFIM_EOH], "i");
	EXPECT_STR(fctx.symlist[SMFIM_EOM], "i");
	cb_close(ctx);
	CU_ASSERT_PTR_NULL(fctx.priv);
}

/*
 * An MTA that offers no no-reply steps gets CONTINUE everywhere, also at
 * the content stages. (libmilter itself adds the NR bits it supports to
 * what it passes on, so with Postfix this is the fallback path only.)
 */
static void
test_no_noreply_offered(void)
{
	unsigned long pf0, pf1, pf2, pf3;
	char host[] = "h", helo[] = "h", from[] = "<a@b>", rcpt_[] = "<b@c>";
	char name[] = "Subject", value[] = "x";
	char *fargv[] = { from, NULL }, *rargv[] = { rcpt_, NULL };
	unsigned char body[4] = "body";

	fake_reset(&fctx);
	cb_negotiate(ctx, all_actions, SMFIP_RCPT_REJ, 0, 0, &pf0, &pf1, &pf2, &pf3);
	CU_ASSERT_EQUAL(pf1, SMFIP_RCPT_REJ);
	CU_ASSERT_EQUAL(cb_connect(ctx, host, NULL), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_helo(ctx, helo), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_envfrom(ctx, fargv), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_envrcpt(ctx, rargv), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_data(ctx), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_header(ctx, name, value), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_eoh(ctx), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_body(ctx, body, sizeof body), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_unknown(ctx, "XYZZY"), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_eom(ctx), SMFIS_CONTINUE);
	cb_close(ctx);
}

/* The MTA skipped negotiation: the session is made at connect, and freed. */
static void
test_connect_without_negotiate(void)
{
	char host[] = "h", helo[] = "h";

	fake_reset(&fctx);
	nlines = 0;
	CU_ASSERT_EQUAL(cb_connect(ctx, host, NULL), SMFIS_CONTINUE);
	CU_ASSERT_PTR_NOT_NULL(fctx.priv);
	CU_ASSERT_EQUAL(cb_helo(ctx, helo), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_unknown(ctx, "XYZZY"), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_close(ctx), SMFIS_CONTINUE);
	CU_ASSERT_PTR_NULL(fctx.priv);
	EXPECT_INT(nlines, 1);
	EXPECT_CONTAINS(lines[0], " unknown_cmds=1 ");
}

/* header.enable = false: no header of ours, but forged copies still go. */
static void
test_header_disabled_still_removes_forged(void)
{
	cfg.header_enable = false;
	start();
	connect_helo_mail();
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1200, "forged");
	CU_ASSERT_EQUAL(cb_eom(ctx), SMFIS_CONTINUE);
	cfg.header_enable = true;
	EXPECT_INT(fctx.nedits, 2);
	CU_ASSERT(fctx.edits[0].op == 'd' && fctx.edits[0].idx == 2);
	CU_ASSERT(fctx.edits[1].op == 'd' && fctx.edits[1].idx == 1);
	cb_close(ctx);
}

static void
test_full_transaction(void)
{
	start();
	connect_helo_mail();
	fake_now = 1045;
	rcpt("<b@example.test>", NULL, NULL);
	fake_now = 1050;
	rcpt("<blocked@example.test>", "5.7.1", "Recipient address rejected: Access denied");
	fake_now = 1060;
	fake_macro(&fctx, "i", "4Xb2Lq0Zz1");
	CU_ASSERT_EQUAL(cb_data(ctx), SMFIS_CONTINUE);
	content(3280, "forged\r\nX-Evil: yes");
	fake_now = 3301;
	CU_ASSERT_EQUAL(cb_eom(ctx), SMFIS_CONTINUE);

	/* forged copies deleted from the highest index, ours inserted at the top */
	EXPECT_INT(fctx.nedits, 3);
	CU_ASSERT(fctx.edits[0].op == 'd' && fctx.edits[0].idx == 2);
	CU_ASSERT(fctx.edits[1].op == 'd' && fctx.edits[1].idx == 1);
	CU_ASSERT(fctx.edits[2].op == 'i' && fctx.edits[2].idx == 0);
	EXPECT_STR(fctx.edits[2].name, "X-SMTP-Trace");
	EXPECT_CONTAINS(fctx.edits[2].value, "mx.test; session=");
	EXPECT_CONTAINS(fctx.edits[2].value, "queue_id=4Xb2Lq0Zz1");
	EXPECT_CONTAINS(fctx.edits[2].value, "outcome=accepted");
	EXPECT_CONTAINS(fctx.edits[2].value, "upload_ms=2220");
	char unfolded[4096];
	unfold(fctx.edits[2].value, unfolded, sizeof unfolded);
	EXPECT_CONTAINS(unfolded, "timeline=\"connect:0, helo:12, mail:31, rcpt:45, "
			"data:60, header:2280, eoh:2280, body:2280, eom:2301\"");

	EXPECT_INT(nlines, 1);
	CU_ASSERT(strncmp(lines[0], "4Xb2Lq0Zz1: kind=txn ", 21) == 0);
	EXPECT_CONTAINS(lines[0], " client=unknown[127.0.0.1]:4321 ");
	EXPECT_CONTAINS(lines[0], " rcpt=1 rcpt_rejected=1 ");
	EXPECT_CONTAINS(lines[0], "rejects=\"<blocked@example.test> 5.7.1 Recipient address rejected: Access denied\"");
	EXPECT_CONTAINS(lines[0], " upload_ms=2220 ");
	EXPECT_CONTAINS(lines[0], " body_bytes=100 ");
	EXPECT_CONTAINS(lines[0], " headers=3 ");

	fake_now = 3400;
	cb_close(ctx);
	EXPECT_INT(nlines, 2);
	CU_ASSERT(strncmp(lines[1], "NOQUEUE: kind=conn ", 19) == 0);
	EXPECT_CONTAINS(lines[1], " txns=1 ");
	EXPECT_CONTAINS(lines[1], " duration_ms=2400");
	CU_ASSERT_PTR_NULL(fctx.priv);
}

/*
 * Where the transaction ends, what follows, and the outcome each must give.
 * An abort of a transaction in DATA without content is decided only at the
 * client's next step: another command means it finished and was refused.
 */
enum then { THEN_CLOSE, THEN_MAIL, THEN_HELO, THEN_UNKNOWN };

struct abort_case {
	const char *name;
	int         stage;		/* 0 after MAIL, 1 after RCPT, 2 after DATA, 3 in content */
	int64_t     end_after_data;	/* ms after DATA, stage 2 */
	bool        by_close;		/* close without abort */
	enum then   then;		/* what follows the abort */
	int64_t     then_after;		/* ms after the abort */
	bool        deferred;		/* no line until what follows */
	const char *want;
};

static const struct abort_case abort_cases[] = {
	{ "abort after MAIL", 0, 0, false, THEN_CLOSE, 0, false, "outcome=aborted-before-data" },
	{ "close after MAIL", 0, 0, true, THEN_CLOSE, 0, false, "outcome=aborted-before-data" },
	{ "abort after RCPT", 1, 0, false, THEN_CLOSE, 0, false, "outcome=aborted-before-data" },
	{ "abort after RCPT, then MAIL", 1, 0, false, THEN_MAIL, 10, false,
	  "outcome=aborted-before-data" },
	{ "abort 1 s after DATA, close", 2, 1000, false, THEN_CLOSE, 0, true,
	  "outcome=ended-after-354" },
	{ "close 1 s after DATA", 2, 1000, true, THEN_CLOSE, 0, false, "outcome=ended-after-354" },
	{ "abort 5 s after DATA, close", 2, 5000, false, THEN_CLOSE, 0, true,
	  "outcome=timeout-after-354" },
	{ "abort 1 s after DATA, close 9 s later", 2, 1000, false, THEN_CLOSE, 9000, true,
	  "outcome=ended-after-354" },
	{ "abort after DATA, then MAIL", 2, 1000, false, THEN_MAIL, 0, true,
	  "outcome=refused-after-354" },
	{ "abort after DATA, MAIL 9 s later", 2, 1000, false, THEN_MAIL, 9000, true,
	  "outcome=refused-after-354" },
	{ "abort after DATA, then HELO", 2, 1000, false, THEN_HELO, 0, true,
	  "outcome=refused-after-354" },
	{ "abort after DATA, unknown command", 2, 1000, false, THEN_UNKNOWN, 0, true,
	  "outcome=refused-after-354" },
	{ "abort in content", 3, 0, false, THEN_CLOSE, 0, false, "outcome=aborted-in-content" },
};

static void
abort_case_then(const struct abort_case *c)
{
	char from[] = "<c@example.test>", helo[] = "again.test", cmd[] = "XYZZY";
	char *argv[] = { from, NULL };

	fake_now += c->then_after;
	switch (c->then) {
	case THEN_CLOSE: break;
	case THEN_MAIL: CU_ASSERT_EQUAL(cb_envfrom(ctx, argv), SMFIS_CONTINUE); break;
	case THEN_HELO: CU_ASSERT_EQUAL(cb_helo(ctx, helo), SMFIS_CONTINUE); break;
	case THEN_UNKNOWN: CU_ASSERT_EQUAL(cb_unknown(ctx, cmd), SMFIS_CONTINUE); break;
	}
	CU_ASSERT_EQUAL(cb_close(ctx), SMFIS_CONTINUE);
}

static void
test_abort_at_every_stage(void)
{
	for (size_t i = 0; i < sizeof abort_cases / sizeof abort_cases[0]; i++) {
		const struct abort_case *c = &abort_cases[i];
		int want_lines = 2 + (c->then == THEN_MAIL);	/* + the second MAIL's */

		start();
		connect_helo_mail();
		if (c->stage >= 1) {
			fake_now = 1045;
			rcpt("<b@example.test>", NULL, NULL);
		}
		if (c->stage >= 2) {
			fake_now = 1060;
			cb_data(ctx);
			fake_now = 1060 + c->end_after_data;
		}
		if (c->stage >= 3)
			content(1500, NULL);
		if (!c->by_close) {
			CU_ASSERT_EQUAL(cb_abort(ctx), SMFIS_CONTINUE);
			if (nlines != (c->deferred ? 0 : 1))
				fprintf(stderr, "\ncase \"%s\": %d lines at the abort\n",
					c->name, nlines);
			EXPECT_INT(nlines, c->deferred ? 0 : 1);
		}
		abort_case_then(c);
		if (nlines != want_lines)
			fprintf(stderr, "\ncase \"%s\": %d lines\n", c->name, nlines);
		EXPECT_INT(nlines, want_lines);	/* txn line(s), then the conn line */
		EXPECT_CONTAINS(lines[0], c->want);
		EXPECT_CONTAINS(lines[0], c->by_close ? ",close:" : ",abort:");
		/* the end is the abort, not the step that told its outcome */
		if (!c->by_close && c->stage == 2)
			EXPECT_CONTAINS(lines[0], c->end_after_data == 5000 ?
					" in_data_ms=5000 " : " in_data_ms=1000 ");
		EXPECT_INT(fctx.nedits, 0);
	}
}

static void
test_two_transactions(void)
{
	start();
	connect_helo_mail();
	fake_now = 1045;
	rcpt("<b@example.test>", NULL, NULL);
	cb_abort(ctx);			/* RSET */
	char from[] = "<c@example.test>";
	char *argv[] = { from, NULL };
	fake_now = 1100;
	cb_envfrom(ctx, argv);
	rcpt("<d@example.test>", NULL, NULL);
	fake_macro(&fctx, "i", "QID2");
	cb_data(ctx);
	content(1200, NULL);
	cb_eom(ctx);
	cb_close(ctx);
	EXPECT_INT(nlines, 3);
	EXPECT_CONTAINS(lines[0], "NOQUEUE: kind=txn");
	EXPECT_CONTAINS(lines[0], " txn=1 ");
	EXPECT_CONTAINS(lines[0], "outcome=aborted-before-data");
	EXPECT_CONTAINS(lines[1], "QID2: kind=txn");
	EXPECT_CONTAINS(lines[1], " txn=2 ");
	EXPECT_CONTAINS(lines[1], "from=<c@example.test>");
	EXPECT_CONTAINS(lines[1], "outcome=accepted");
	EXPECT_CONTAINS(lines[1], "rcpt=1 rcpt_rejected=0");
	EXPECT_CONTAINS(lines[2], " txns=2 ");
	/* the same session id on all three */
	const char *sid = strstr(lines[0], "session=");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sid);
	char want[32];
	snprintf(want, sizeof want, "%.24s", sid);
	EXPECT_CONTAINS(lines[1], want);
	EXPECT_CONTAINS(lines[2], want);
}

static void
test_close_without_connect(void)
{
	start();			/* negotiate made a session */
	CU_ASSERT_EQUAL(cb_close(ctx), SMFIS_CONTINUE);
	EXPECT_INT(nlines, 0);
	CU_ASSERT_PTR_NULL(fctx.priv);

	fake_reset(&fctx);		/* no private data at all */
	CU_ASSERT_EQUAL(cb_close(ctx), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_abort(ctx), SMFIS_CONTINUE);
	CU_ASSERT_EQUAL(cb_eom(ctx), SMFIS_CONTINUE);
	char h[] = "h";
	CU_ASSERT_EQUAL(cb_helo(ctx, h), SMFIS_CONTINUE);
	EXPECT_INT(nlines, 0);
}

/* A refused header edit costs the header, never the message. */
static void
test_refused_edit_still_continues(void)
{
	start();
	connect_helo_mail();
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1200, "forged");
	fctx.edits_refused = 1;
	unsigned long before = log_degraded_count(DEGRADED_HEADER_EDIT);
	CU_ASSERT_EQUAL(cb_eom(ctx), SMFIS_CONTINUE);
	CU_ASSERT(log_degraded_count(DEGRADED_HEADER_EDIT) > before);
	EXPECT_CONTAINS(lines[nlines - 1], "outcome=accepted");
	cb_close(ctx);
}

static void
test_skip_authenticated(void)
{
	cfg.header_skip_authenticated = true;
	start();
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[] = "h", helo[] = "h", from[] = "<a@b>";
	char *argv[] = { from, NULL };
	cb_connect(ctx, host, (_SOCK_ADDR *)&sin);
	cb_helo(ctx, helo);
	fake_macro(&fctx, "{auth_authen}", "alice");
	cb_envfrom(ctx, argv);
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1200, "forged");
	cb_eom(ctx);
	cfg.header_skip_authenticated = false;
	/* forged copies still go; ours is not added */
	EXPECT_INT(fctx.nedits, 2);
	CU_ASSERT(fctx.edits[0].op == 'd' && fctx.edits[1].op == 'd');
	EXPECT_CONTAINS(lines[0], " auth=alice ");
	cb_close(ctx);
}

static void
test_hostile_helo(void)
{
	char *helo = malloc(10001);
	CU_ASSERT_PTR_NOT_NULL_FATAL(helo);
	for (int i = 0; i < 10000; i++)
		helo[i] = "x\r\n\x01\xff \"="[i % 8];
	helo[10000] = '\0';

	start();
	char host[] = "h", from[] = "<a@b>";
	char *argv[] = { from, NULL };
	cb_connect(ctx, host, NULL);
	cb_helo(ctx, helo);
	cb_envfrom(ctx, argv);
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1200, NULL);
	cb_eom(ctx);
	cb_close(ctx);
	free(helo);
	EXPECT_INT(nlines, 2);
	for (int i = 0; i < nlines; i++) {
		CU_ASSERT_PTR_NULL(strchr(lines[i], '\n'));
		CU_ASSERT_PTR_NULL(strchr(lines[i], '\r'));
		CU_ASSERT(strlen(lines[i]) < 2048);
	}
	EXPECT_INT(fctx.nedits, 1);
	CU_ASSERT(fctx.edits[0].op == 'i');
	const char *v = fctx.edits[0].value;
	for (const char *line = v; *line; ) {
		size_t len = strcspn(line, "\n");
		CU_ASSERT(len < 998 && strspn(line, " \t") < len);
		line += len + (line[len] == '\n');
	}
	for (const char *p = v; *p; p++)
		CU_ASSERT((*p == '\n' && (p[1] == '\t' || p[1] == ' ')) || *p == '\t' ||
			  ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f));
}

/*
 * With a real registry: every way a transaction in DATA ends takes it out
 * of the registry, and a stall that was reported shows on its line.
 */
enum end_path { END_HEADER, END_EOH, END_BODY, END_EOM, END_ABORT, END_CLOSE, END_MAIL };

static void
test_registry_every_end_path(void)
{
	static const char *const names[] = {
		"header", "eoh", "body", "eom", "abort", "close", "new MAIL",
	};
	struct registry reg;
	size_t in_data, stalled;

	CU_ASSERT_FATAL(registry_init(&reg, 1000, 0) == 0);
	callbacks_init(&cfg, &reg);
	for (int path = END_HEADER; path <= END_MAIL; path++) {
		char name[] = "Subject", value[] = "x", from[] = "<c@d>";
		char *argv[] = { from, NULL };
		unsigned char body[1] = { 'x' };
		struct stall_view due[2];

		start();
		connect_helo_mail();
		rcpt("<b@example.test>", NULL, NULL);
		fake_now = 2000;
		cb_data(ctx);
		cb_data(ctx);			/* a second DATA changes nothing */
		registry_counts(&reg, &in_data, &stalled, NULL);
		EXPECT_INT(in_data, 1);
		EXPECT_INT(registry_due(&reg, 3000, due, 2), 1);	/* it stalls once */
		fake_now = 3500;
		switch (path) {
		case END_HEADER: cb_header(ctx, name, value); break;
		case END_EOH: cb_eoh(ctx); break;
		case END_BODY: cb_body(ctx, body, sizeof body); break;
		case END_EOM: cb_eom(ctx); break;
		case END_ABORT: cb_abort(ctx); break;
		case END_CLOSE: break;
		case END_MAIL: cb_envfrom(ctx, argv); break;
		}
		registry_counts(&reg, &in_data, &stalled, NULL);
		if (path != END_CLOSE) {
			if (in_data != 0)
				fprintf(stderr, "\nend by %s: still in DATA\n", names[path]);
			EXPECT_INT(in_data, 0);
		}
		cb_close(ctx);
		registry_counts(&reg, &in_data, &stalled, NULL);
		EXPECT_INT(in_data, 0);
		EXPECT_INT(stalled, 0);
		EXPECT_CONTAINS(lines[0], " stalled=yes stall_warnings=1 ");
	}
	callbacks_init(&cfg, NULL);
	registry_destroy(&reg);
}

/*
 * A DATA event after the content came (an MTA's second DATA) once put the
 * transaction back into the registry with no warnings, and its line lost
 * stalled=yes stall_warnings=N.
 */
static void
test_data_after_content(void)
{
	struct registry reg;
	struct stall_view due[2];
	size_t in_data, stalled;
	char name[] = "Subject", value[] = "x";

	CU_ASSERT_FATAL(registry_init(&reg, 1000, 0) == 0);
	callbacks_init(&cfg, &reg);
	start();
	connect_helo_mail();
	rcpt("<b@example.test>", NULL, NULL);
	fake_now = 2000;
	cb_data(ctx);
	EXPECT_INT(registry_due(&reg, 3000, due, 2), 1);
	fake_now = 3500;
	cb_header(ctx, name, value);
	cb_data(ctx);
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 0);
	cb_eom(ctx);
	cb_close(ctx);
	EXPECT_CONTAINS(lines[0], " stalled=yes stall_warnings=1 ");
	EXPECT_CONTAINS(lines[0], ",data:1000,header:2500,");
	callbacks_init(&cfg, NULL);
	registry_destroy(&reg);
}

/* STARTTLS then MAIL without a new EHLO: the HELO name said in clear is not current. */
static void
test_tls_without_second_ehlo(void)
{
	char from[] = "<a@example.test>";
	char *argv[] = { from, NULL };

	start();
	connect_helo_mail();		/* EHLO client.test, no TLS yet */
	cb_abort(ctx);
	fake_macro(&fctx, "{tls_version}", "TLSv1.3");
	fake_now = 1200;
	cb_envfrom(ctx, argv);		/* MAIL over TLS, no EHLO since */
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1300, NULL);
	cb_eom(ctx);
	cb_close(ctx);
	EXPECT_INT(nlines, 3);
	CU_ASSERT_PTR_NULL(strstr(lines[1], " helo="));
	EXPECT_CONTAINS(lines[1], " helo_before_tls=client.test ");
	EXPECT_CONTAINS(lines[1], " tls=TLSv1.3 ");
	fake_macro(&fctx, "{tls_version}", NULL);
}

/* The client's address and port are never cut, however long its name. */
static void
test_long_client_name(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(41234) };
	char host[300];

	memset(host, 'a', 199);
	host[199] = '\0';
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	start();
	cb_connect(ctx, host, (_SOCK_ADDR *)&sin);
	cb_close(ctx);
	EXPECT_INT(nlines, 1);
	EXPECT_CONTAINS(lines[0], "[192.0.2.7]:41234 ");
	/* the stall view's smaller buffer too */
	struct session *sess = session_create("0000000000000009", 0);
	char view[REGISTRY_TEXT_MAX];
	session_connect(sess, host, "2001:db8::7", 41234, 0);
	record_client(sess, view, sizeof view);
	CU_ASSERT(strlen(view) < sizeof view);
	EXPECT_CONTAINS(view, "...[2001:db8::7]:41234");
	session_free(sess);
}

/* Unix and unknown address families are named as such. */
static void
test_address_families(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char host[] = "bogus";

	start();
	cb_connect(ctx, host, NULL);
	cb_close(ctx);
	EXPECT_CONTAINS(lines[0], " client=bogus[unknown] ");
	start();
	cb_connect(ctx, host, (_SOCK_ADDR *)&sun);
	cb_close(ctx);
	EXPECT_CONTAINS(lines[0], " client=bogus[unix] ");
}

/* A second connect (no MTA sends one) does not rewrite a session in flight. */
static void
test_second_connect_ignored(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9999) };
	char other[] = "other.example";

	start();
	connect_helo_mail();
	rcpt("<b@example.test>", NULL, NULL);
	cb_data(ctx);
	inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
	CU_ASSERT_EQUAL(cb_connect(ctx, other, (_SOCK_ADDR *)&sin), SMFIS_CONTINUE);
	content(1500, NULL);
	cb_eom(ctx);
	cb_close(ctx);
	EXPECT_CONTAINS(lines[0], " client=unknown[127.0.0.1]:4321 ");
	EXPECT_CONTAINS(lines[0], " outcome=accepted ");
}

/* A second negotiation on one context ends the first session, once. */
static void
test_second_negotiation(void)
{
	unsigned long pf0, pf1, pf2, pf3;
	char buf[8192];
	struct sbuf sb;

	metrics_reset();
	start();
	connect_helo_mail();
	cb_negotiate(ctx, all_actions, all_steps, 0, 0, &pf0, &pf1, &pf2, &pf3);
	EXPECT_INT(nlines, 2);		/* the first one's txn and conn lines */
	EXPECT_CONTAINS(lines[0], "outcome=aborted-before-data");
	cb_close(ctx);
	CU_ASSERT_PTR_NULL(fctx.priv);
	sbuf_init(&sb, buf, sizeof buf);
	metrics_render(&sb, NULL);
	EXPECT_CONTAINS(buf, "\nsmtptrace_connections_open 0\n");
	metrics_reset();
}

/*
 * Hostile values in every field once made 9,961-byte JSON lines, over
 * rsyslog's 8 KiB message, where the line is cut and stops being JSON: the
 * values are shortened, the syntax stays whole.
 */
static void
test_line_cap(void)
{
	char big[600], text[300];
	char *argv[] = { big, NULL };

	memset(big, '\xff', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memset(text, '\x01', sizeof text - 1);
	text[sizeof text - 1] = '\0';
	unsigned long cut_before = log_degraded_count(DEGRADED_LOG_CUT);
	for (int format = LOG_FORMAT_KV; format <= LOG_FORMAT_JSON; format++) {
		cfg.log_format = format;
		start();
		cb_connect(ctx, big, NULL);
		cb_helo(ctx, big);
		cb_envfrom(ctx, argv);
		for (int i = 0; i < 10; i++)
			rcpt(big, "5.1.1", text);
		cb_close(ctx);
		EXPECT_INT(nlines, 2);
		size_t len = strlen(lines[0]);
		if (len > LOG_RECORD_MAX)
			fprintf(stderr, "\nformat %d: a %zu-byte line\n", format, len);
		CU_ASSERT(len <= LOG_RECORD_MAX && len > 2000);
		if (format == LOG_FORMAT_JSON) {
			CU_ASSERT(lines[0][0] == '{' && lines[0][len - 1] == '}');
		} else {
			EXPECT_CONTAINS(lines[0], " outcome=no-valid-recipients ");
		}
		EXPECT_CONTAINS(lines[0], "...");
	}
	cfg.log_format = LOG_FORMAT_KV;
	CU_ASSERT(log_degraded_count(DEGRADED_LOG_SHORTENED) > 0);
	EXPECT_INT(log_degraded_count(DEGRADED_LOG_CUT), cut_before);
}

/*
 * A reload in the middle of a transaction: that one keeps the snapshot it
 * started with, the next MAIL takes the new one, and no snapshot is left
 * behind once the connection closes.
 */
static void
test_reload_midway(void)
{
	struct config next = cfg;
	char from[] = "<c@example.test>";
	char *argv[] = { from, NULL };

	start();
	connect_helo_mail();
	rcpt("<b@example.test>", NULL, NULL);
	snprintf(next.header_name, sizeof next.header_name, "X-Other-Trace");
	cfgstore_publish(&next);
	EXPECT_INT(cfgstore_alive(), 2);	/* the old one, held by this transaction */
	cb_data(ctx);
	content(1200, NULL);
	cb_eom(ctx);
	EXPECT_INT(fctx.nedits, 1);
	EXPECT_STR(fctx.edits[0].name, "X-SMTP-Trace");
	fake_now = 1500;
	cb_envfrom(ctx, argv);
	EXPECT_INT(cfgstore_alive(), 1);	/* let go at the next MAIL */
	rcpt("<d@example.test>", NULL, NULL);
	cb_data(ctx);
	content(1600, NULL);
	cb_eom(ctx);
	EXPECT_INT(fctx.nedits, 2);
	EXPECT_STR(fctx.edits[1].name, "X-Other-Trace");
	cb_close(ctx);
	EXPECT_INT(cfgstore_alive(), 1);
	cfgstore_publish(&cfg);
}

/* The detail of a degradation (a queue id: the MTA's) is escaped. */
static void
test_degraded_detail_escaped(void)
{
	warning[0] = '\0';
	log_degraded(DEGRADED_LOG_CUT, "QID\nkind=txn fake=1");
	EXPECT_CONTAINS(warning, "observing less: ");
	CU_ASSERT_PTR_NULL(strchr(warning, '\n'));
	EXPECT_CONTAINS(warning, "\"QID\\nkind=txn fake=1\"");
}

int
suite_callbacks(void)
{
	CU_pSuite s = CU_add_suite("callbacks", setup, NULL);
	return s == NULL ||
	       !CU_add_test(s, "negotiation", test_negotiation) ||
	       !CU_add_test(s, "DATA after the content", test_data_after_content) ||
	       !CU_add_test(s, "MTA without no-reply steps", test_no_noreply_offered) ||
	       !CU_add_test(s, "connect without negotiate", test_connect_without_negotiate) ||
	       !CU_add_test(s, "header disabled: forged copies still removed", test_header_disabled_still_removes_forged) ||
	       !CU_add_test(s, "full transaction: log line and header", test_full_transaction) ||
	       !CU_add_test(s, "abort at every stage", test_abort_at_every_stage) ||
	       !CU_add_test(s, "two transactions on one connection", test_two_transactions) ||
	       !CU_add_test(s, "close without connect", test_close_without_connect) ||
	       !CU_add_test(s, "refused header edit", test_refused_edit_still_continues) ||
	       !CU_add_test(s, "skip_authenticated", test_skip_authenticated) ||
	       !CU_add_test(s, "hostile 10,000-byte HELO", test_hostile_helo) ||
	       !CU_add_test(s, "STARTTLS, then MAIL without EHLO", test_tls_without_second_ehlo) ||
	       !CU_add_test(s, "a long client name never hides the address", test_long_client_name) ||
	       !CU_add_test(s, "unix and unknown address families", test_address_families) ||
	       !CU_add_test(s, "a second negotiation", test_second_negotiation) ||
	       !CU_add_test(s, "a second connect is ignored", test_second_connect_ignored) ||
	       !CU_add_test(s, "a degradation's detail is escaped", test_degraded_detail_escaped) ||
	       !CU_add_test(s, "a reload in the middle of a transaction", test_reload_midway) ||
	       !CU_add_test(s, "every log line within syslog's message size", test_line_cap) ||
	       !CU_add_test(s, "a transaction in DATA leaves the registry on every path",
			    test_registry_every_end_path);
}
