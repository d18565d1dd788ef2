/*
 * codes.c: the knowledge base covers every code of the reference lists
 * (tests/data/reply-codes.txt, tests/data/enhanced-codes.txt, the
 * project's own copy), with no key twice, and explains combinations and
 * unknown codes.
 */
#include <stdlib.h>

#include "codes.h"
#include "tests.h"

static int
check_list(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		n++;
		const struct code_entry *e = codes_lookup(line);
		if (e == NULL)
			fprintf(stderr, "\n%s: no entry for %s\n", path, line);
		CU_ASSERT_PTR_NOT_NULL(e);
	}
	fclose(f);
	return n;
}

static void
test_every_basic_code_covered(void)
{
	/* 45 distinct codes in the reference list at the time of writing */
	CU_ASSERT(check_list("tests/data/reply-codes.txt") >= 45);
}

static void
test_every_enhanced_code_covered(void)
{
	CU_ASSERT(check_list("tests/data/enhanced-codes.txt") >= 92);
}

static void
test_no_key_twice(void)
{
	for (size_t i = 0; i < codes_count(); i++)
		for (size_t j = i + 1; j < codes_count(); j++)
			if (strcmp(codes_at(i)->key, codes_at(j)->key) == 0) {
				fprintf(stderr, "\nkey %s twice\n", codes_at(i)->key);
				CU_FAIL("duplicate key");
			}
}

static void
test_every_entry_complete(void)
{
	for (size_t i = 0; i < codes_count(); i++) {
		const struct code_entry *e = codes_at(i);
		CU_ASSERT(strlen(e->meaning) > 10 && strlen(e->meaning) <= 100);
		CU_ASSERT(strlen(e->advice) > 20);
		/* an RFC, or the draft the registry cites (X.7.28) */
		CU_ASSERT(strncmp(e->reference, "RFC ", 4) == 0 ||
			  strncmp(e->reference, "draft-", 6) == 0);
	}
}

struct case_ {
	int         basic;
	const char *enhanced;
	bool        known;
	char        class_digit;
	bool        conflict;
	const char *summary_has;
};

static const struct case_ cases[] = {
	{ 354, NULL, true, '3', false, "354: positive intermediate; Start mail input" },
	{ 550, "5.1.1", true, '5', false, "550 5.1.1: permanent failure" },
	{ 421, "4.4.2", true, '4', false, "421 4.4.2: transient failure" },
	{ 550, "4.4.7", true, '5', true, "the classes disagree, the basic code 550 decides" },
	{ 451, "5.7.1", true, '4', true, "the basic code 451 decides" },
	{ -1, "5.7.1", true, '5', false, "5.7.1: permanent failure" },
	{ 599, NULL, false, '5', false, "599 is not a registered code" },
	{ 550, "5.1.99", false, '5', false, "5.1.99 is not registered" },
	{ -1, "4.7.30", true, '4', false, "4.7.30: transient failure" },
};

static void
test_explanations(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct case_ *c = &cases[i];
		struct explanation ex;
		char buf[1024];
		struct sbuf sb;

		bool known = codes_explain(c->basic, c->enhanced, &ex);
		EXPECT_INT(known, c->known);
		EXPECT_INT(ex.class_digit, c->class_digit);
		EXPECT_INT(ex.conflict, c->conflict);
		sbuf_init(&sb, buf, sizeof buf);
		codes_summary(&ex, &sb);
		EXPECT_CONTAINS(buf, c->summary_has);
	}
}

static void
test_describe_fits_80_columns(void)
{
	static char buf[16384];
	struct sbuf sb;

	for (size_t i = 0; i < codes_count(); i++) {
		const struct code_entry *e = codes_at(i);
		struct explanation ex;
		char enh[16];
		int basic = -1;

		if (e->key[0] == 'X') {
			snprintf(enh, sizeof enh, "5%s", e->key + 1);
			if (strchr(enh + 2, 'X') != NULL)
				continue;
		} else if (strchr(e->key, 'X') != NULL) {
			continue;
		} else {
			basic = atoi(e->key);
			enh[0] = '\0';
		}
		codes_explain(basic, enh, &ex);
		sbuf_init(&sb, buf, sizeof buf);
		codes_describe(&ex, &sb, 80);
		CU_ASSERT_FALSE(sb.overflow);
		for (char *line = buf; *line; ) {
			size_t len = strcspn(line, "\n");
			/* a single word longer than the width may stand alone */
			if (len > 80 && memchr(line + 6, ' ', len - 6) != NULL)
				fprintf(stderr, "\n%s: line of %zu columns\n", e->key, len);
			CU_ASSERT(len <= 80 || memchr(line + 6, ' ', len - 6) == NULL);
			line += len + (line[len] == '\n');
		}
	}
}

static void
test_bad_enhanced_rejected(void)
{
	struct explanation ex;

	CU_ASSERT_FALSE(codes_explain(-1, "3.1.1", &ex));	/* no class 3 */
	CU_ASSERT_FALSE(codes_explain(-1, "5.1", &ex));
	CU_ASSERT_FALSE(codes_explain(-1, "5.1.1.1", &ex));
	CU_ASSERT_FALSE(codes_explain(-1, "5.1.1000", &ex));
	CU_ASSERT_FALSE(codes_explain(-1, "5.1000.1", &ex));
}

/*
 * RFC 3463 allows a subject of one to three digits: "5.10.1" is an
 * unregistered code of class 5, not "not a valid reply class", and with a
 * basic code it is kept.
 */
static void
test_wide_subject(void)
{
	struct explanation ex;
	char buf[512];
	struct sbuf sb;

	CU_ASSERT_FALSE(codes_explain(-1, "5.10.1", &ex));	/* not registered */
	EXPECT_STR(ex.enhanced, "5.10.1");
	EXPECT_INT(ex.class_digit, '5');
	sbuf_init(&sb, buf, sizeof buf);
	codes_summary(&ex, &sb);
	EXPECT_STR(buf, "5.10.1: permanent failure; 5.10.1 is not registered "
		   "(no subject of that number is)");
	codes_explain(550, "5.123.456", &ex);
	EXPECT_STR(ex.enhanced, "5.123.456");
	sbuf_init(&sb, buf, sizeof buf);
	codes_summary(&ex, &sb);
	EXPECT_CONTAINS(buf, "550 5.123.456: permanent failure; ");
}

int
suite_codes(void)
{
	CU_pSuite s = CU_add_suite("reply-code knowledge base", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "every basic code of the reference has an entry", test_every_basic_code_covered) ||
	       !CU_add_test(s, "every enhanced code of the registry has an entry", test_every_enhanced_code_covered) ||
	       !CU_add_test(s, "no key twice", test_no_key_twice) ||
	       !CU_add_test(s, "every entry complete", test_every_entry_complete) ||
	       !CU_add_test(s, "combined and unknown codes", test_explanations) ||
	       !CU_add_test(s, "descriptions fit 80 columns", test_describe_fits_80_columns) ||
	       !CU_add_test(s, "malformed enhanced codes", test_bad_enhanced_rejected) ||
	       !CU_add_test(s, "subjects of two and three digits", test_wide_subject);
}
