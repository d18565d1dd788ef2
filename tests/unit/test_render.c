/* record.c and render.c: the log line, the JSON line and the header. */
#include <stdlib.h>

#include "escape.h"
#include "record.h"
#include "render.h"
#include "tests.h"

static struct session *
accepted_session(const char *helo)
{
	struct session *s = session_create("5f1c0a9e3b7d2c41", 1000);

	session_connect(s, "[192.0.2.7]", "192.0.2.7", 41234, 1000);
	session_helo(s, helo, 1012);
	txn_begin(s, "<a@example.org>", NULL, 1031);
	txn_rcpt(&s->txn, "<b@example.org>", NULL, NULL, 1045);
	txn_rcpt(&s->txn, "<blocked@example.org>", "5.7.1",
		 "Recipient address rejected: Access denied", 1050);
	txn_set_queue_id(&s->txn, "4Xb2Lq0Zz1");
	txn_data(&s->txn, 1060);
	txn_header(&s->txn, "Subject", "test", "X-SMTP-Trace", 3280);
	txn_eoh(&s->txn, 3280);
	txn_body(&s->txn, 10244, 3281);
	txn_mark(&s->txn, PHASE_EOM, 3301);
	return s;
}

static void
test_kv_line(void)
{
	struct session *s = accepted_session("client.example");
	struct record r;
	char buf[4096], want[4096];
	struct sbuf sb;

	record_txn(&r, s, OUTCOME_ACCEPTED, 3301);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	/* no reply= for accepted: the milter never sees the final reply */
	snprintf(want, sizeof want,
		"4Xb2Lq0Zz1: kind=txn session=5f1c0a9e3b7d2c41 txn=1"
		" client=unknown[192.0.2.7]:41234 helo=client.example"
		" from=<a@example.org> rcpt=1 rcpt_rejected=1"
		" rejects=\"<blocked@example.org> 5.7.1 Recipient address rejected: Access denied\""
		" rejects_explain=\"5.7.1: permanent failure; Delivery not authorized: the message was refused by policy\""
		" outcome=accepted"
		" timeline=connect:0,helo:12,mail:31,rcpt:45,data:60,header:2280,eoh:2280,body:2281,eom:2301"
		" upload_ms=2220 headers=1 header_bytes=15 body_bytes=10244 duration_ms=2270"
		" explain=\"%s\"", outcome_explain(OUTCOME_ACCEPTED));
	EXPECT_STR(buf, want);
	session_free(s);
}

static void
test_json_line(void)
{
	struct session *s = session_create("5f1c0a9e3b7d2c41", 0);
	struct record r;
	char buf[4096], want[4096];
	struct sbuf sb;

	session_connect(s, "mx.example", "2001:db8::1", 25, 0);
	session_helo(s, "bad\"helo\n", 5);
	txn_begin(s, "<>", NULL, 10);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 11);
	txn_data(&s->txn, 20);
	txn_mark(&s->txn, PHASE_CLOSE, 1020);
	record_txn(&r, s, OUTCOME_ENDED_AFTER_354, 1020);
	sbuf_init(&sb, buf, sizeof buf);
	render_json(&r, &sb);
	snprintf(want, sizeof want,
		"{\"queue_id\":null,\"kind\":\"txn\",\"session\":\"5f1c0a9e3b7d2c41\","
		"\"txn\":1,\"client\":\"mx.example[2001:db8::1]:25\","
		"\"helo\":\"bad\\\"helo\\n\",\"from\":\"<>\",\"rcpt\":1,"
		"\"rcpt_rejected\":0,\"outcome\":\"ended-after-354\","
		"\"timeline\":{\"connect\":0,\"helo\":5,\"mail\":10,\"rcpt\":11,"
		"\"data\":20,\"close\":1020},\"in_data_ms\":1000,\"duration_ms\":1010,"
		"\"explain\":\"%s\"}", outcome_explain(OUTCOME_ENDED_AFTER_354));
	EXPECT_STR(buf, want);
	session_free(s);
}

static void
test_kv_noqueue_prefix(void)
{
	struct session *s = session_create("0000000000000001", 0);
	struct record r;
	char buf[1024];
	struct sbuf sb;

	session_connect(s, "c", "192.0.2.1", 1, 0);
	txn_begin(s, "<a@b>", NULL, 1);
	record_txn(&r, s, OUTCOME_ABORTED_BEFORE_DATA, 2);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	CU_ASSERT(strncmp(buf, "NOQUEUE: kind=txn ", 18) == 0);
	CU_ASSERT_PTR_NULL(strstr(buf, "reply="));	/* nothing was replied */
	session_free(s);
}

/* Each line of a folded header value: returns the longest, counting a tab as 8. */
static size_t
longest_line(const char *value, size_t first_col)
{
	size_t longest = 0, col = first_col;

	for (const char *p = value;; p++) {
		if (*p == '\n' || *p == '\0') {
			if (col > longest)
				longest = col;
			if (*p == '\0')
				return longest;
			col = 0;
		} else {
			col += *p == '\t' ? 8 : 1;
		}
	}
}

static void
test_header_format(void)
{
	struct session *s = accepted_session("client.example");
	struct record r;
	char buf[4096];
	struct sbuf sb;

	record_txn(&r, s, OUTCOME_ACCEPTED, 3301);
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, "mx.test", strlen("X-SMTP-Trace"), false, &sb);
	EXPECT_STR(buf,
		"mx.test; session=5f1c0a9e3b7d2c41; txn=1; queue_id=4Xb2Lq0Zz1;\n"
		"\tclient=\"unknown[192.0.2.7]:41234\"; helo=client.example;\n"
		"\tfrom=\"<a@example.org>\"; rcpt=1; rcpt_rejected=1;\n"
		"\trejects=\"<blocked@example.org> 5.7.1 Recipient address rejected:\n"
		" Access denied\"; outcome=accepted;\n"
		"\ttimeline=\"connect:0, helo:12, mail:31, rcpt:45, data:60, header:2280,\n"
		" eoh:2280, body:2281, eom:2301\"; upload_ms=2220; headers=1; header_bytes=15;\n"
		"\tbody_bytes=10244; duration_ms=2270");
	CU_ASSERT(longest_line(buf, strlen("X-SMTP-Trace: ")) <= 78);
	session_free(s);
}

static void
test_header_hostile_helo(void)
{
	char *helo = malloc(10001);
	struct record r;
	char buf[4096];
	struct sbuf sb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(helo);
	for (int i = 0; i < 10000; i++)
		helo[i] = "a\r\nb\x80\"\\;"[i % 8];
	helo[10000] = '\0';
	struct session *s = accepted_session(helo);
	record_txn(&r, s, OUTCOME_ACCEPTED, 3301);
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, "mx.test", strlen("X-SMTP-Trace"), false, &sb);
	CU_ASSERT_FALSE(sb.overflow);
	CU_ASSERT(longest_line(buf, strlen("X-SMTP-Trace: ")) < 998);
	for (const char *p = buf; *p; p++) {
		unsigned char c = (unsigned char)*p;
		/* only folding may bring a newline, always followed by white space */
		if (c == '\n') {
			CU_ASSERT(p[1] == '\t' || p[1] == ' ');
		} else {
			CU_ASSERT(c == '\t' || (c >= 0x20 && c < 0x7f));
		}
	}
	EXPECT_CONTAINS(buf, "helo=\"a%0D%0Ab%80\\\"\\\\;");
	EXPECT_CONTAINS(buf, "...\"");

	/* and the log line stays one line */
	char line[16384];
	sbuf_init(&sb, line, sizeof line);
	render_kv(&r, &sb);
	CU_ASSERT_PTR_NULL(strchr(line, '\n'));
	CU_ASSERT_PTR_NULL(strchr(line, '\r'));
	CU_ASSERT(strlen(line) < 4096);
	session_free(s);
	free(helo);
}

/* A timed-out upload: the reply the client got, explained from the knowledge base. */
static void
test_reply_explained(void)
{
	struct session *s = session_create("0000000000000002", 0);
	struct record r;
	char buf[4096];
	struct sbuf sb;

	session_connect(s, "c", "192.0.2.1", 1, 0);
	txn_begin(s, "<a@b>", NULL, 10);
	txn_rcpt(&s->txn, "<b@c>", NULL, NULL, 20);
	txn_data(&s->txn, 30);
	txn_mark(&s->txn, PHASE_ABORT, 300030);
	/* the enhanced code is the MTA's own: known from its {v} */
	record_txn(&r, s, OUTCOME_TIMEOUT_AFTER_354, 300030);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	EXPECT_CONTAINS(buf, " reply=421 reply_explain=\"421: transient failure; ");
	session_set_mta(s, "8.17.1.9");
	record_txn(&r, s, OUTCOME_TIMEOUT_AFTER_354, 300030);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	EXPECT_CONTAINS(buf, " reply=\"421 4.4.1\" reply_explain=\"421 4.4.1: transient failure; ");
	session_set_mta(s, "Postfix 3.7.11");
	record_txn(&r, s, OUTCOME_TIMEOUT_AFTER_354, 300030);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	EXPECT_CONTAINS(buf, " reply=\"421 4.4.2\" reply_explain=\"421 4.4.2: transient failure; ");
	EXPECT_CONTAINS(buf, "; Bad connection: ");

	/* in the header only when asked for */
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, "mx.test", 12, false, &sb);
	CU_ASSERT_PTR_NULL(strstr(buf, "explain"));
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, "mx.test", 12, true, &sb);
	EXPECT_CONTAINS(buf, "reply_explain=");
	EXPECT_CONTAINS(buf, "explain=\"the client got 354 and smtptrace saw no content");
	session_free(s);
}

/*
 * Every recipient rejected: only the enhanced code reached the milter, so
 * the reply is its class and code, explained as such (it was once read
 * back from its own text and came out as "not a valid reply class").
 */
static void
test_no_valid_recipients_reply(void)
{
	struct session *s = session_create("0000000000000003", 0);
	struct record r;
	char buf[4096];
	struct sbuf sb;

	session_connect(s, "c", "192.0.2.1", 1, 0);
	txn_begin(s, "<a@b>", NULL, 10);
	txn_rcpt(&s->txn, "<x@c>", "5.7.1", "Recipient address rejected: Access denied", 20);
	record_txn(&r, s, OUTCOME_NO_VALID_RECIPIENTS, 30);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	EXPECT_CONTAINS(buf, " reply=\"5xx 5.7.1\" reply_explain=\"5.7.1: permanent failure; ");
	CU_ASSERT_PTR_NULL(strstr(buf, "not a valid"));
	session_free(s);
}

/* Lines of a folded value: none only white space, none ending in white space. */
static void
check_fold_lines(const char *value)
{
	for (const char *line = value; *line; ) {
		size_t len = strcspn(line, "\n");
		size_t ws = strspn(line, " \t");
		CU_ASSERT(ws < len);			/* not only white space */
		CU_ASSERT(len == 0 || (line[len - 1] != ' ' && line[len - 1] != '\t'));
		CU_ASSERT(len < 998);
		line += len + (line[len] == '\n');
	}
}

/* A quoted local part with a run of spaces before a long word (Postfix takes it). */
static void
test_header_space_runs(void)
{
	char from[256];
	struct sbuf sb;
	struct record r;
	static char buf[RENDER_HEADER_MAX];

	snprintf(from, sizeof from, "<\"a%70s%.90s\"@example.com>", "",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	struct session *s = accepted_session("client.example");
	text_copy(s->txn.sender, sizeof s->txn.sender, from);
	record_txn(&r, s, OUTCOME_ACCEPTED, 3301);
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, "mx.test", 12, false, &sb);
	check_fold_lines(buf);
	/* unfolding gives the sender back */
	char unfolded[RENDER_HEADER_MAX];
	size_t n = 0;
	for (const char *p = buf; *p; p++)
		if (*p != '\n')
			unfolded[n++] = *p;
	unfolded[n] = '\0';
	EXPECT_CONTAINS(unfolded, "from=\"<\\\"a                ");
	session_free(s);
}

/* Every MTA-supplied field at its cap, all 8-bit, a long authserv-id: it fits. */
static void
test_header_everything_at_cap(void)
{
	static char buf[RENDER_HEADER_MAX];
	char big[SESSION_ADDR_MAX + 1];
	struct record r;
	struct sbuf sb;

	memset(big, 0x80, sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct session *s = session_create("0123456789abcdef", 0);
	session_connect(s, big, "2001:db8::1", 65535, 0);
	session_helo(s, big, 1);
	session_set_tls(s, big);
	txn_begin(s, big, big, 2);
	for (int i = 0; i < SESSION_REJECTS_KEPT + 3; i++)
		txn_rcpt(&s->txn, big, "5.7.1", big, 3);
	txn_set_queue_id(&s->txn, big);
	txn_data(&s->txn, 4);
	txn_header(&s->txn, "a", "b", "X-SMTP-Trace", 5);
	txn_mark(&s->txn, PHASE_EOM, 6);
	record_txn(&r, s, OUTCOME_ACCEPTED, 6);
	char authserv[256];
	memset(authserv, '"', sizeof authserv - 1);
	authserv[sizeof authserv - 1] = '\0';
	sbuf_init(&sb, buf, sizeof buf);
	render_header(&r, authserv, 63, true, &sb);
	CU_ASSERT_FALSE(sb.overflow);
	check_fold_lines(buf);

	sbuf_init(&sb, buf, sizeof buf);
	render_header_short(&r, "mx.test", &sb);
	EXPECT_CONTAINS(buf, "mx.test; session=0123456789abcdef; queue_id=");
	EXPECT_CONTAINS(buf, "; outcome=accepted;\n\tcut=yes");
	session_free(s);
}

static void
test_conn_line(void)
{
	struct session *s = session_create("00000000000000ff", 0);
	struct record r;
	char buf[1024];
	struct sbuf sb;

	session_connect(s, "client.example", "192.0.2.1", 5000, 0);
	session_helo(s, "client.example", 10);
	session_helo(s, "client.example", 300);
	session_set_tls(s, "TLSv1.3");
	session_unknown(s);
	txn_begin(s, "<a@b>", NULL, 400);
	txn_end(s, 0);
	record_conn(&r, s, 900);
	sbuf_init(&sb, buf, sizeof buf);
	render_kv(&r, &sb);
	EXPECT_STR(buf, "NOQUEUE: kind=conn session=00000000000000ff"
		   " client=client.example[192.0.2.1]:5000 helo=client.example"
		   " helo_count=2 tls=TLSv1.3 txns=1 unknown_cmds=1 duration_ms=900");
	session_free(s);
}

/* Each field key of r is documented in smtptrace-milter(8) as ".B key". */
static void
check_documented(const struct record *r, const char *man)
{
	char want[96];

	for (size_t i = 0; i < r->nfields; i++) {
		snprintf(want, sizeof want, "\n.B %s\n", r->fields[i].key);
		if (strstr(man, want) == NULL)
			fprintf(stderr, "\nmilter/smtptrace-milter.8 lacks the field %s\n",
				r->fields[i].key);
		CU_ASSERT_PTR_NOT_NULL(strstr(man, want));
	}
}

/*
 * Every field the records can hold appears in the man page: records built
 * through every branch of record.c (TLS, SASL, rejects, every outcome,
 * stalls, the HELO said before TLS, connection and stall lines).
 */
static void
test_every_field_documented(void)
{
	static char man[256 * 1024];
	FILE *f = fopen("milter/smtptrace-milter.8", "r");
	struct record r;
	struct stall_view v = { .session = "5f1c0a9e3b7d2c41", .txn = 1 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	man[fread(man, 1, sizeof man - 1, f)] = '\0';
	fclose(f);
	struct session *s = accepted_session("client.example");
	session_set_tls(s, "TLSv1.3");
	text_copy(s->auth_user, sizeof s->auth_user, "alice");
	s->txn.stall_warnings = 2;
	for (int o = 0; o < OUTCOME__COUNT; o++) {
		record_txn(&r, s, (enum outcome)o, 3301);
		check_documented(&r, man);
	}
	record_conn(&r, s, 4000);
	check_documented(&r, man);
	session_free(s);
	s = session_create("5f1c0a9e3b7d2c42", 0);
	session_helo(s, "before.example", 1);
	session_mail_tls(s, "TLSv1.3");
	txn_begin(s, "<a@b>", NULL, 2);
	txn_data(&s->txn, 3);
	record_txn(&r, s, OUTCOME_ENDED_AFTER_354, 9);
	check_documented(&r, man);
	session_free(s);
	record_stall(&r, &v);
	check_documented(&r, man);
}

int
suite_render(void)
{
	CU_pSuite s = CU_add_suite("record and render", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "key=value transaction line", test_kv_line) ||
	       !CU_add_test(s, "JSON transaction line", test_json_line) ||
	       !CU_add_test(s, "NOQUEUE prefix", test_kv_noqueue_prefix) ||
	       !CU_add_test(s, "header items and folding", test_header_format) ||
	       !CU_add_test(s, "header with a 10,000-byte hostile HELO", test_header_hostile_helo) ||
	       !CU_add_test(s, "reply explained", test_reply_explained) ||
	       !CU_add_test(s, "no valid recipients: the reply", test_no_valid_recipients_reply) ||
	       !CU_add_test(s, "every field documented in smtptrace-milter(8)", test_every_field_documented) ||
	       !CU_add_test(s, "header: runs of spaces fold cleanly", test_header_space_runs) ||
	       !CU_add_test(s, "header: every field at its cap fits", test_header_everything_at_cap) ||
	       !CU_add_test(s, "connection line", test_conn_line);
}
