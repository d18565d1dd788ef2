/* escape.c: bare values, quoting, hostile bytes, caps. */
#include "escape.h"
#include "tests.h"

typedef void (*escape_fn)(struct sbuf *, const char *, size_t);

struct case_ {
	const char *in;
	size_t      max;
	const char *kv, *header, *json;
};

static const struct case_ cases[] = {
	{ "mx.example.org", 100, "mx.example.org", "mx.example.org", "\"mx.example.org\"" },
	{ "", 100, "\"\"", "\"\"", "\"\"" },
	{ "<a@b.example>", 100, "<a@b.example>", "\"<a@b.example>\"", "\"<a@b.example>\"" },
	{ "two words", 100, "\"two words\"", "\"two words\"", "\"two words\"" },
	{ "a=b", 100, "\"a=b\"", "\"a=b\"", "\"a=b\"" },
	{ "say \"hi\"\\", 100, "\"say \\\"hi\\\"\\\\\"", "\"say \\\"hi\\\"\\\\\"",
	  "\"say \\\"hi\\\"\\\\\"" },
	{ "x\r\nX-Evil: 1", 100, "\"x\\r\\nX-Evil: 1\"", "\"x\\r\\nX-Evil: 1\"",
	  "\"x\\r\\nX-Evil: 1\"" },
	{ "tab\there", 100, "\"tab\\there\"", "\"tab\\there\"", "\"tab\\there\"" },
	{ "caf\xc3\xa9", 100, "\"caf\\xc3\\xa9\"", "\"caf\\xc3\\xa9\"", "\"caf\\u00c3\\u00a9\"" },
	{ "\x01\x7f", 100, "\"\\x01\\x7f\"", "\"\\x01\\x7f\"", "\"\\u0001\\u007f\"" },
	{ "abcdefgh", 4, "abcd...", "abcd...", "\"abcd...\"" },
	{ "a b cdef", 4, "\"a b ...\"", "\"a b ...\"", "\"a b ...\"" },
	{ "unknown[127.0.0.1]:25", 100, "unknown[127.0.0.1]:25",
	  "\"unknown[127.0.0.1]:25\"", "\"unknown[127.0.0.1]:25\"" },
};

static void
check(escape_fn fn, const char *in, size_t max, const char *want)
{
	char buf[256];
	struct sbuf sb;

	sbuf_init(&sb, buf, sizeof buf);
	fn(&sb, in, max);
	EXPECT_STR(buf, want);
}

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		check(escape_kv, cases[i].in, cases[i].max, cases[i].kv);
		check(escape_header, cases[i].in, cases[i].max, cases[i].header);
		check(escape_json, cases[i].in, cases[i].max, cases[i].json);
	}
}

static void
test_null_is_empty(void)
{
	check(escape_kv, NULL, 10, "\"\"");
	check(escape_json, NULL, 10, "\"\"");
}

/* No output byte of any escaper is a control byte or 8-bit. */
static void
test_every_byte(void)
{
	escape_fn fns[] = { escape_kv, escape_header, escape_json };
	char in[256], out[2048];
	struct sbuf sb;

	for (int i = 1; i < 256; i++)
		in[i - 1] = (char)i;
	in[255] = '\0';
	for (size_t f = 0; f < 3; f++) {
		sbuf_init(&sb, out, sizeof out);
		fns[f](&sb, in, sizeof in);
		CU_ASSERT_FALSE(sb.overflow);
		for (size_t j = 0; j < sb.len; j++)
			CU_ASSERT((unsigned char)out[j] >= 0x20 &&
				  (unsigned char)out[j] < 0x7f);
	}
}

static void
test_text_copy(void)
{
	char small[8];

	text_copy(small, sizeof small, "short");
	EXPECT_STR(small, "short");
	text_copy(small, sizeof small, "exactly");	/* 7 bytes fit */
	EXPECT_STR(small, "exactly");
	text_copy(small, sizeof small, "too long by far");
	EXPECT_STR(small, "too ...");
	text_copy(small, sizeof small, NULL);
	EXPECT_STR(small, "");
}

static void
test_sbuf_overflow(void)
{
	char buf[6];
	struct sbuf sb;

	sbuf_init(&sb, buf, sizeof buf);
	sbuf_puts(&sb, "abc");
	CU_ASSERT_FALSE(sb.overflow);
	sbuf_printf(&sb, "%d", 12345);
	CU_ASSERT_TRUE(sb.overflow);
	EXPECT_STR(buf, "abc12");
	sbuf_puts(&sb, "more");
	EXPECT_STR(buf, "abc12");
}

int
suite_escape(void)
{
	CU_pSuite s = CU_add_suite("escape", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "table of values", test_table) ||
	       !CU_add_test(s, "NULL is empty", test_null_is_empty) ||
	       !CU_add_test(s, "every byte comes out printable", test_every_byte) ||
	       !CU_add_test(s, "capped copy", test_text_copy) ||
	       !CU_add_test(s, "sbuf never overflows", test_sbuf_overflow);
}
