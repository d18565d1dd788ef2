/* session.c and outcome.c: timelines and outcomes from exact times. */
#include "outcome.h"
#include "session.h"
#include "tests.h"

static const struct outcome_limits limits = {
	.data_timeout_ms = 300000, .tolerance_ms = 2000,
};

/* One transaction: MAIL at 31, RCPT at 45, then what the case says. */
struct case_ {
	const char *name;
	int         rcpt_ok, rcpt_rej;
	int64_t     data, header, eom;	/* -1: not seen */
	int64_t     end;
	enum outcome_next next;		/* what followed the end */
	enum outcome want;
	const char  *want_reply;
};

#define CLOSE	OUTCOME_NEXT_CLOSE
#define CMD	OUTCOME_NEXT_COMMAND
#define NONE	OUTCOME_NEXT_NONE

static const struct case_ cases[] = {
	{ "eom seen", 1, 0, 60, 2280, 2301, 2301, NONE, OUTCOME_ACCEPTED, "" },
	{ "eom without headers", 1, 0, 60, -1, 90, 90, NONE, OUTCOME_ACCEPTED, "" },
	{ "ended right after 354", 1, 0, 60, -1, -1, 1060, CLOSE, OUTCOME_ENDED_AFTER_354, "" },
	{ "ended just before timeout-tolerance", 1, 0, 60, -1, -1, 60 + 297999, CLOSE,
	  OUTCOME_ENDED_AFTER_354, "" },
	{ "ended at timeout-tolerance", 1, 0, 60, -1, -1, 60 + 298000, CLOSE,
	  OUTCOME_TIMEOUT_AFTER_354, "421" },
	{ "ended at the timeout", 1, 0, 60, -1, -1, 60 + 300010, CLOSE,
	  OUTCOME_TIMEOUT_AFTER_354, "421" },
	{ "went on after 354", 1, 0, 60, -1, -1, 1060, CMD, OUTCOME_REFUSED_AFTER_354, "" },
	{ "went on after the timeout", 1, 0, 60, -1, -1, 60 + 300010, CMD,
	  OUTCOME_REFUSED_AFTER_354, "" },
	{ "content, then abort", 1, 0, 60, 5000, -1, 5001, NONE, OUTCOME_ABORTED_IN_CONTENT, "" },
	{ "content, then a command", 1, 0, 60, 5000, -1, 5001, CMD, OUTCOME_ABORTED_IN_CONTENT, "" },
	{ "RSET after RCPT", 1, 0, -1, -1, -1, 50, NONE, OUTCOME_ABORTED_BEFORE_DATA, "" },
	{ "QUIT after MAIL, no RCPT", 0, 0, -1, -1, -1, 40, CLOSE, OUTCOME_ABORTED_BEFORE_DATA, "" },
	{ "every RCPT rejected", 0, 2, -1, -1, -1, 70, CMD, OUTCOME_NO_VALID_RECIPIENTS, "5xx 5.7.1" },
	{ "one of two rejected, then RSET", 1, 1, -1, -1, -1, 70, NONE,
	  OUTCOME_ABORTED_BEFORE_DATA, "" },
};

static void
build(struct session *s, const struct case_ *c)
{
	session_connect(s, "client.example", "192.0.2.1", 4321, 0);
	session_helo(s, "client.example", 12);
	txn_begin(s, "<a@example.org>", NULL, 31);
	for (int i = 0; i < c->rcpt_ok; i++)
		txn_rcpt(&s->txn, "<b@example.org>", NULL, NULL, 45);
	for (int i = 0; i < c->rcpt_rej; i++)
		txn_rcpt(&s->txn, "<x@example.org>", "5.7.1",
			 "Recipient address rejected: Access denied", 45);
	if (c->data >= 0)
		txn_data(&s->txn, c->data);
	if (c->header >= 0)
		txn_header(&s->txn, "Subject", "hi", "X-SMTP-Trace", c->header);
	if (c->eom >= 0)
		txn_mark(&s->txn, PHASE_EOM, c->eom);
}

static void
test_outcomes(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct case_ *c = &cases[i];
		struct session *s = session_create("0123456789abcdef", 0);
		struct implied_reply ir;
		char reply[64];
		struct sbuf sb;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		build(s, c);
		CU_ASSERT_EQUAL(outcome_needs_next(&s->txn),
				c->data >= 0 && c->header < 0 && c->eom < 0);
		enum outcome got = outcome_decide(&s->txn, c->end, c->next, &limits);
		if (got != c->want)
			fprintf(stderr, "\ncase \"%s\": got %s, want %s\n", c->name,
				outcome_name(got), outcome_name(c->want));
		CU_ASSERT_EQUAL(got, c->want);
		sbuf_init(&sb, reply, sizeof reply);
		outcome_reply(got, &s->txn, &ir);
		implied_reply_format(&ir, &sb);
		EXPECT_STR(reply, c->want_reply);
		CU_ASSERT(strlen(outcome_explain(got)) > 20);
		session_free(s);
	}
}

static void
test_upload_time(void)
{
	struct session *s = session_create("0123456789abcdef", 1000);

	session_connect(s, "c", "192.0.2.1", 1, 1000);
	txn_begin(s, "<a@b>", NULL, 1031);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 1045);
	txn_data(&s->txn, 1060);
	EXPECT_INT(txn_upload_ms(&s->txn), -1);
	txn_header(&s->txn, "From", "a@b", "X-SMTP-Trace", 3280);
	txn_header(&s->txn, "To", "b@c", "X-SMTP-Trace", 3281);
	txn_eoh(&s->txn, 3282);
	txn_body(&s->txn, 100, 3283);
	txn_body(&s->txn, 50, 3284);
	EXPECT_INT(txn_upload_ms(&s->txn), 2220);
	EXPECT_INT(s->txn.at[PHASE_HEADER], 3280);	/* the first, not the last */
	EXPECT_INT(s->txn.at[PHASE_BODY], 3283);
	EXPECT_INT(s->txn.body_bytes, 150);
	EXPECT_INT(s->txn.headers, 2);
	EXPECT_INT(s->txn.header_bytes, strlen("From: a@b\r\nTo: b@c\r\n"));
	session_free(s);
}

/* Without headers (a bare body), the upload ends at the first body event. */
static void
test_upload_without_headers(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	txn_begin(s, "<>", NULL, 10);
	txn_data(&s->txn, 20);
	txn_eoh(&s->txn, 520);
	txn_mark(&s->txn, PHASE_EOM, 521);
	EXPECT_INT(txn_upload_ms(&s->txn), 500);
	session_free(s);
}

static void
test_second_transaction_resets(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	session_helo(s, "h", 5);
	txn_begin(s, "<a@b>", NULL, 10);
	txn_rcpt(&s->txn, "<x@y>", "5.1.1", "User unknown", 11);
	txn_data(&s->txn, 12);
	txn_set_queue_id(&s->txn, "ABC123");
	txn_end(s, 0);
	txn_begin(s, "<c@d>", NULL, 100);
	EXPECT_INT(s->txn.seq, 2);
	EXPECT_INT(s->txn_count, 2);
	EXPECT_INT(s->txn.rcpt_rejected, 0);
	EXPECT_INT(s->txn.at[PHASE_DATA], -1);
	EXPECT_INT(s->txn.at[PHASE_HELO], 5);
	EXPECT_STR(s->txn.queue_id, "");
	EXPECT_STR(s->txn.sender, "<c@d>");
	session_free(s);
}

static void
test_rejects_capped(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	txn_begin(s, "<a@b>", NULL, 10);
	for (int i = 0; i < SESSION_REJECTS_KEPT + 5; i++)
		txn_rcpt(&s->txn, "<x@y>", "5.1.1", "User unknown", 11 + i);
	EXPECT_INT(s->txn.rcpt_rejected, SESSION_REJECTS_KEPT + 5);
	EXPECT_INT(s->txn.rejects_kept, SESSION_REJECTS_KEPT);
	EXPECT_INT(s->txn.at[PHASE_RCPT], 11);
	session_free(s);
}

static void
test_own_header_counted(void)
{
	struct session *s = session_create("0123456789abcdef", 0);

	txn_begin(s, "<a@b>", NULL, 10);
	txn_header(&s->txn, "x-smtp-trace", "forged", "X-SMTP-Trace", 20);
	txn_header(&s->txn, "X-SMTP-Trace-Other", "no", "X-SMTP-Trace", 20);
	txn_header(&s->txn, "X-SMTP-TRACE", "forged", "X-SMTP-Trace", 20);
	EXPECT_INT(s->txn.own_headers, 2);
	session_free(s);
}

/* The one table: names unique and found again, every outcome has its words. */
static void
test_outcome_table(void)
{
	for (int o = 0; o < OUTCOME__COUNT; o++) {
		const char *name = outcome_name((enum outcome)o);

		EXPECT_INT(outcome_from_name(name, strlen(name)), o);
		CU_ASSERT(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(name));
		CU_ASSERT(strlen(outcome_explain((enum outcome)o)) > 40);
		CU_ASSERT(strlen(outcome_verdict_text((enum outcome)o)) > 40);
		for (const char *p = outcome_explain((enum outcome)o); *p; p++)
			CU_ASSERT(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
	}
	EXPECT_INT(outcome_from_name("accepted", 7), -1);
	EXPECT_INT(outcome_from_name("abandoned-after-354", 19), OUTCOME_ABANDONED_AFTER_354);
	/* what only the MTA's log can tell is never the milter's decision */
	CU_ASSERT_EQUAL(outcome_scope(OUTCOME_ABANDONED_AFTER_354), OUTCOME_LOG);
	CU_ASSERT_EQUAL(outcome_scope(OUTCOME_REFUSED_AT_DATA), OUTCOME_LOG);
	CU_ASSERT_EQUAL(outcome_scope(OUTCOME_DISCARDED), OUTCOME_LOG);
	CU_ASSERT_EQUAL(outcome_scope(OUTCOME_ENDED_AFTER_354), OUTCOME_MILTER);
	/* the accepted sentence must not claim the final reply */
	EXPECT_CONTAINS(outcome_explain(OUTCOME_ACCEPTED), "listed after smtptrace");
	EXPECT_CONTAINS(outcome_explain(OUTCOME_ENDED_AFTER_354), "cannot tell");
}

int
suite_outcome(void)
{
	CU_pSuite s = CU_add_suite("timeline and outcome", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "outcome decisions", test_outcomes) ||
	       !CU_add_test(s, "the outcome table", test_outcome_table) ||
	       !CU_add_test(s, "upload time and sizes", test_upload_time) ||
	       !CU_add_test(s, "upload without headers", test_upload_without_headers) ||
	       !CU_add_test(s, "second transaction starts clean", test_second_transaction_resets) ||
	       !CU_add_test(s, "rejected recipients capped", test_rejects_capped) ||
	       !CU_add_test(s, "incoming copies of our header counted", test_own_header_counted);
}
