/*
 * reply.c against real reply and log lines: tests/data/replies.tsv holds
 * lines from Postfix, Exim, Sendmail, qmail and large providers (each
 * row says where it came from) with the codes the parser must find.
 * Multi-line replies are written there with a literal "\n" between lines.
 */
#include <stdlib.h>

#include "reply.h"
#include "tests.h"

#define TSV "tests/data/replies.tsv"

/* Turn the two characters \n into a newline, in place. */
static void
decode_newlines(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r++;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static void
test_real_lines(void)
{
	FILE *f = fopen(TSV, "r");
	char line[8192];
	int rows = 0, failed = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));	/* header */
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		char *input = line, *code = strchr(input, '\t');
		CU_ASSERT_PTR_NOT_NULL_FATAL(code);
		*code++ = '\0';
		char *enh = strchr(code, '\t');
		CU_ASSERT_PTR_NOT_NULL_FATAL(enh);
		*enh++ = '\0';
		char *source = strchr(enh, '\t');
		CU_ASSERT_PTR_NOT_NULL_FATAL(source);
		*source++ = '\0';
		decode_newlines(input);

		struct reply r;
		char text[4096];
		struct sbuf sb;
		sbuf_init(&sb, text, sizeof text);
		reply_join(input, &r, &sb);
		int want_code = strcmp(code, "-") == 0 ? -1 : atoi(code);
		const char *want_enh = strcmp(enh, "-") == 0 ? "" : enh;
		rows++;
		if (r.code != want_code || strcmp(r.enhanced, want_enh) != 0) {
			failed++;
			fprintf(stderr, "\n%s:%d (%s): got %d %s, want %s %s\n  %.160s\n",
				TSV, rows + 1, source, r.code, r.enhanced[0] ? r.enhanced : "-",
				code, enh, input);
		}
	}
	fclose(f);
	CU_ASSERT(rows >= 60);
	EXPECT_INT(failed, 0);
}

static void
test_events(void)
{
	struct reply r;

	CU_ASSERT_TRUE(reply_parse("Nov 30 11:00:00 mx postfix/smtpd[123]: timeout after DATA (432 bytes) from unknown[192.0.2.1]", &r));
	EXPECT_INT(r.event, REPLY_EVENT_TIMEOUT);
	EXPECT_STR(r.stage, "DATA");
	EXPECT_INT(r.code, -1);	/* "432 bytes" is no reply code */
	CU_ASSERT_TRUE(reply_parse("postfix/smtpd[9]: lost connection after END-OF-MESSAGE from x[192.0.2.1]", &r));
	EXPECT_INT(r.event, REPLY_EVENT_LOST);
	EXPECT_STR(r.stage, "END-OF-MESSAGE");
	CU_ASSERT_FALSE(reply_parse("Nov 30 11:00:00 mx postfix/smtpd[123]: connect from unknown[192.0.2.1]", &r));
	CU_ASSERT_FALSE(reply_parse("", &r));
}

static void
test_text_and_join(void)
{
	struct reply r;
	char text[256];
	struct sbuf sb;

	CU_ASSERT_TRUE(reply_parse("550 5.1.1 <a@b>: User unknown", &r));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.text);
	CU_ASSERT(r.text_len == strlen("<a@b>: User unknown") &&
		  strncmp(r.text, "<a@b>: User unknown", r.text_len) == 0);
	CU_ASSERT_FALSE(r.continued);
	CU_ASSERT_TRUE(reply_parse("550-5.7.1 first line", &r));
	CU_ASSERT_TRUE(r.continued);

	sbuf_init(&sb, text, sizeof text);
	CU_ASSERT_TRUE(reply_join("550-5.1.1 The account\n550-5.1.1 does not\n550 5.1.1 exist.", &r, &sb));
	EXPECT_INT(r.code, 550);
	EXPECT_STR(r.enhanced, "5.1.1");
	EXPECT_STR(text, "The account does not exist.");
}

/* One line is parsed on its own; a reply split over lines is joined. */
static void
test_lines_apart(void)
{
	struct reply r;
	char text[256];
	struct sbuf sb;

	CU_ASSERT_TRUE(reply_parse("550-5.7.1 first line\nhost x said: 450 4.7.1 second", &r));
	EXPECT_INT(r.code, 550);
	EXPECT_STR(r.enhanced, "5.7.1");
	CU_ASSERT(r.text_len == strlen("first line"));
	CU_ASSERT_TRUE(reply_parse("550-no enhanced code here\ntimeout after DATA (1 bytes)", &r));
	EXPECT_INT(r.event, REPLY_EVENT_NONE);	/* the event is on another line */

	/* the enhanced code on a later line of the same reply */
	sbuf_init(&sb, text, sizeof text);
	CU_ASSERT_TRUE(reply_join("550-Verification failed\n550 5.7.1 Access denied", &r, &sb));
	EXPECT_INT(r.code, 550);
	EXPECT_STR(r.enhanced, "5.7.1");
	EXPECT_STR(text, "Verification failed Access denied");

	/* a line longer than REPLY_LINE_MAX: parsed on its first part, no overrun */
	static char big[REPLY_LINE_MAX * 3];
	memset(big, '9', sizeof big - 1);
	memcpy(big, "421 4.4.2 ", 10);
	big[sizeof big - 1] = '\0';
	CU_ASSERT_TRUE(reply_parse(big, &r));
	EXPECT_INT(r.code, 421);
	CU_ASSERT(r.text == big + 10 && r.text_len == REPLY_LINE_MAX - 1 - 10);
}

int
suite_reply(void)
{
	CU_pSuite s = CU_add_suite("reply parser", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "real reply and log lines (tests/data/replies.tsv)", test_real_lines) ||
	       !CU_add_test(s, "timeout / lost connection after STAGE", test_events) ||
	       !CU_add_test(s, "text and multi-line join", test_text_and_join) ||
	       !CU_add_test(s, "lines parsed apart", test_lines_apart);
}
