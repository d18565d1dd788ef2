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
	enum outcome want;
	const char  *want_reply;
};

static const struct case_ cases[] = {
	{ "eom seen", 1, 0, 60, 2280, 2301, 2301, OUTCOME_ACCEPTED, "250 2.0.0" },
	{ "eom without headers", 1, 0, 60, -1, 90, 90, OUTCOME_ACCEPTED, "250 2.0.0" },
	{ "left right after 354", 1, 0, 60, -1, -1, 1060, OUTCOME_ABANDONED_AFTER_354, "" },
	{ "left just before timeout-tolerance", 1, 0, 60, -1, -1, 60 + 297999,
	  OUTCOME_ABANDONED_AFTER_354, "" },
	{ "ended at timeout-tolerance", 1, 0, 60, -1, -1, 60 + 298000,
	  OUTCOME_TIMEOUT_AFTER_354, "421 4.4.2" },
	{ "ended at the timeout", 1, 0, 60, -1, -1, 60 + 300010,
	  OUTCOME_TIMEOUT_AFTER_354, "421 4.4.2" },
	{ "content, then abort", 1, 0, 60, 5000, -1, 5001, OUTCOME_ABORTED_IN_CONTENT, "" },
	{ "RSET after RCPT", 1, 0, -1, -1, -1, 50, OUTCOME_ABORTED_BEFORE_DATA, "" },
	{ "QUIT after MAIL, no RCPT", 0, 0, -1, -1, -1, 40, OUTCOME_ABORTED_BEFORE_DATA, "" },
	{ "every RCPT rejected", 0, 2, -1, -1, -1, 70, OUTCOME_NO_VALID_RECIPIENTS, "5xx 5.7.1" },
	{ "one of two rejected, then RSET", 1, 1, -1, -1, -1, 70, OUTCOME_ABORTED_BEFORE_DATA, "" },
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
		char reply[64];
		struct sbuf sb;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		build(s, c);
		enum outcome got = outcome_decide(&s->txn, c->end, &limits);
		if (got != c->want)
			fprintf(stderr, "\ncase \"%s\": got %s, want %s\n", c->name,
				outcome_name(got), outcome_name(c->want));
		CU_ASSERT_EQUAL(got, c->want);
		sbuf_init(&sb, reply, sizeof reply);
		outcome_reply(got, &s->txn, &sb);
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

int
suite_outcome(void)
{
	CU_pSuite s = CU_add_suite("timeline and outcome", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "outcome table", test_outcomes) ||
	       !CU_add_test(s, "upload time and sizes", test_upload_time) ||
	       !CU_add_test(s, "upload without headers", test_upload_without_headers) ||
	       !CU_add_test(s, "second transaction starts clean", test_second_transaction_resets) ||
	       !CU_add_test(s, "rejected recipients capped", test_rejects_capped) ||
	       !CU_add_test(s, "incoming copies of our header counted", test_own_header_counted);
}
