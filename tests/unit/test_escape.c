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
	{ "x\r\nX-Evil: 1", 100, "\"x\\r\\nX-Evil: 1\"", "\"x%0D%0AX-Evil: 1\"",
	  "\"x\\r\\nX-Evil: 1\"" },
	{ "tab\there", 100, "\"tab\\there\"", "\"tab%09here\"", "\"tab\\there\"" },
	/* UTF-8 (SMTPUTF8): kept in JSON, never raw in a log line or the header */
	{ "caf\xc3\xa9", 100, "\"caf\\xc3\\xa9\"", "\"caf%C3%A9\"", "\"caf\xc3\xa9\"" },
	{ "j\xc3\xb6s@\xe4\xbe\x8b.\xf0\x9f\x98\x80", 100,
	  "\"j\\xc3\\xb6s@\\xe4\\xbe\\x8b.\\xf0\\x9f\\x98\\x80\"",
	  "\"j%C3%B6s@%E4%BE%8B.%F0%9F%98%80\"",
	  "\"j\xc3\xb6s@\xe4\xbe\x8b.\xf0\x9f\x98\x80\"" },
	/* not UTF-8: a lone lead byte, an overlong '/', a surrogate, past U+10FFFF */
	{ "\xc3(", 100, "\"\\xc3(\"", "\"%C3(\"", "\"\\u00c3(\"" },
	{ "\xc0\xaf", 100, "\"\\xc0\\xaf\"", "\"%C0%AF\"", "\"\\u00c0\\u00af\"" },
	{ "\xed\xa0\x80", 100, "\"\\xed\\xa0\\x80\"", "\"%ED%A0%80\"",
	  "\"\\u00ed\\u00a0\\u0080\"" },
	{ "\xf4\x90\x80\x80", 100, "\"\\xf4\\x90\\x80\\x80\"", "\"%F4%90%80%80\"",
	  "\"\\u00f4\\u0090\\u0080\\u0080\"" },
	/* a cut never splits a character */
	{ "\xc3\xa9\xc3\xa9", 3, "\"\\xc3\\xa9...\"", "\"%C3%A9...\"",
	  "\"\xc3\xa9...\"" },
	{ "\x01\x7f", 100, "\"\\x01\\x7f\"", "\"%01%7F\"", "\"\\u0001\\u007f\"" },
	/* '%' is the header's escape: a value holding one is quoted and encoded */
	{ "50%", 100, "50%", "\"50%25\"", "\"50%\"" },
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

/* No output byte of any escaper is a control byte or 8-bit (the bytes 1-255
 * in a row hold no well-formed UTF-8, so JSON escapes them all too). */
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
	text_copy(small, sizeof small, "abc\xc3\xa9\xc3\xa9x");	/* a cut inside the first */
	EXPECT_STR(small, "abc...");
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
