/*
 * NAME
 *	fuzz_reply - reply_parse and reply_join on any bytes
 * DESCRIPTION
 *	The input up to its first NUL is the text (one line or several); the
 *	bytes after the NUL are the garbage appended after a line break.
 *	Properties (reply.h):
 *
 *	prop_codes      the code is -1 or 200-599 and its three digits stand
 *	                in the first line; the enhanced code is "" or matches
 *	                [245]\.\d{1,3}\.\d{1,3} and stands in the first line;
 *	                the result is true exactly when a code, an enhanced
 *	                code or an event was found; "continued" only with a code
 *	prop_event      an event has a stage of [A-Z-] that follows "timeout
 *	                after " or "lost connection after " in the first line
 *	prop_text       no code, no text; with a code the text lies in the
 *	                first line (its first REPLY_LINE_MAX - 1 bytes) and
 *	                runs to its end
 *	prop_garbage    "\n<garbage>" or "\r\n<garbage>" after the line changes
 *	                nothing in reply_parse's result (the text at the same
 *	                offset)
 *	prop_join       reply_join: codes as above, no text pointer; the joined
 *	                text is the texts reply_parse finds in each line, joined
 *	                by one space; codes and event are the first parsed
 *	                line's (a later line may only add a missing enhanced
 *	                code); appending "\n<garbage>" keeps the codes found
 *	                and only appends to the joined text
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "reply.h"
#include "sbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define JOIN_MAX (256 * 1024)

static bool
enhanced_ok(const char *e)
{
	size_t i = 1;

	if (e[0] != '2' && e[0] != '4' && e[0] != '5')
		return false;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;
		if (e[i++] != '.')
			return false;
		while (isdigit((unsigned char)e[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits < 1 || digits > 3)
			return false;
	}
	return e[i] == '\0';
}

/* The part of the input reply_parse reads: the first line, at most REPLY_LINE_MAX - 1 bytes. */
static size_t
first_line_len(const char *line)
{
	size_t n = strcspn(line, "\r\n");

	return n < REPLY_LINE_MAX - 1 ? n : REPLY_LINE_MAX - 1;
}

static bool
in_first_line(const char *line, const char *needle)
{
	size_t n = first_line_len(line), k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(line + i, needle, k) == 0)
			return true;
	return false;
}

/* line: the parsed line, or NULL for a joined result. */
static void
prop_codes(const char *line, const struct reply *r, bool found)
{
	FUZZ_CHECK(r->code == -1 || (r->code >= 200 && r->code <= 599), "code %d", r->code);
	if (r->code > 0 && line != NULL) {
		char digits[8];
		snprintf(digits, sizeof digits, "%d", r->code);
		FUZZ_CHECK(in_first_line(line, digits), "code %d is not in the line", r->code);
	}
	FUZZ_CHECK(memchr(r->enhanced, '\0', sizeof r->enhanced) != NULL, "enhanced unterminated");
	if (r->enhanced[0] != '\0') {
		FUZZ_CHECK(enhanced_ok(r->enhanced), "enhanced code \"%s\"", r->enhanced);
		FUZZ_CHECK(line == NULL || in_first_line(line, r->enhanced),
			   "enhanced code %s is not in the line", r->enhanced);
	}
	FUZZ_CHECK(found == (r->code > 0 || r->enhanced[0] != '\0' ||
			     r->event != REPLY_EVENT_NONE), "the result says %d", found);
	FUZZ_CHECK(!r->continued || r->code > 0, "continued without a code");
}

static void
prop_event(const char *line, const struct reply *r)
{
	char needle[64];

	FUZZ_CHECK(memchr(r->stage, '\0', sizeof r->stage) != NULL, "stage unterminated");
	if (r->event == REPLY_EVENT_NONE) {
		FUZZ_CHECK(r->stage[0] == '\0', "a stage without an event");
		return;
	}
	FUZZ_CHECK(r->event == REPLY_EVENT_TIMEOUT || r->event == REPLY_EVENT_LOST,
		   "event %d", r->event);
	FUZZ_CHECK(r->stage[0] != '\0', "an event without a stage");
	for (const char *p = r->stage; *p; p++)
		FUZZ_CHECK(isupper((unsigned char)*p) || *p == '-', "stage \"%s\"", r->stage);
	snprintf(needle, sizeof needle, "%s%s",
		 r->event == REPLY_EVENT_TIMEOUT ? "timeout after " : "lost connection after ",
		 r->stage);
	FUZZ_CHECK(in_first_line(line, needle), "\"%s\" is not in the line", needle);
}

static void
prop_text(const char *line, const struct reply *r)
{
	size_t n = first_line_len(line);

	if (r->code < 0) {
		FUZZ_CHECK(r->text == NULL && r->text_len == 0, "a text without a code");
		return;
	}
	FUZZ_CHECK(r->text != NULL, "a code without a text");
	FUZZ_CHECK(r->text >= line && r->text <= line + n && r->text_len <= n &&
		   r->text + r->text_len == line + n,
		   "the text (offset %td, %zu bytes) is not the rest of the %zu-byte line",
		   r->text - line, r->text_len, n);
}

static void
expect_same(const struct reply *a, const char *la, const struct reply *b,
	    const char *lb, bool fa, bool fb)
{
	FUZZ_CHECK(fa == fb && a->code == b->code && a->continued == b->continued &&
		   a->event == b->event && strcmp(a->enhanced, b->enhanced) == 0 &&
		   strcmp(a->stage, b->stage) == 0,
		   "garbage after the line changed the codes: %d %s / %d %s",
		   a->code, a->enhanced, b->code, b->enhanced);
	FUZZ_CHECK((a->text == NULL) == (b->text == NULL) && a->text_len == b->text_len &&
		   (a->text == NULL || a->text - la == b->text - lb),
		   "garbage after the line changed the text");
}

static void
prop_garbage(const char *line, const char *garbage, const struct reply *r, bool found)
{
	static const char *const breaks[] = { "\n", "\r\n" };
	size_t ll = strlen(line), gl = strlen(garbage);
	char *both = malloc(ll + gl + 3);
	struct reply r2;

	if (both == NULL)
		abort();
	for (size_t b = 0; b < 2; b++) {
		size_t bl = strlen(breaks[b]);
		memcpy(both, line, ll);
		memcpy(both + ll, breaks[b], bl);
		memcpy(both + ll + bl, garbage, gl + 1);
		bool found2 = reply_parse(both, &r2);
		expect_same(r, line, &r2, both, found, found2);
	}
	free(both);
}

/* What reply_join should give, from reply_parse on each line. */
static size_t
join_oracle(const char *lines, struct reply *first, bool *have, char *out)
{
	size_t n = 0;
	struct reply cur;

	*have = false;
	for (const char *line = lines; line != NULL && *line != '\0';) {
		if (reply_parse(line, &cur)) {
			if (!*have) {
				*first = cur;
				*have = true;
			}
			if (cur.text != NULL && cur.text_len > 0) {
				if (n > 0)
					out[n++] = ' ';
				memcpy(out + n, cur.text, cur.text_len);
				n += cur.text_len;
			}
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	out[n] = '\0';
	return n;
}

static void
prop_join(const char *lines, const char *garbage)
{
	static char buf[JOIN_MAX], want[JOIN_MAX], buf2[JOIN_MAX];
	struct reply r, first, r2;
	struct sbuf sb, sb2;
	bool have;

	sbuf_init(&sb, buf, sizeof buf);
	bool found = reply_join(lines, &r, &sb);
	size_t n = join_oracle(lines, &first, &have, want);
	prop_codes(NULL, &r, found);
	FUZZ_CHECK(found == have, "reply_join says %d, a line parses: %d", found, have);
	FUZZ_CHECK(r.text == NULL && r.text_len == 0 && !r.continued, "joined: text or continued");
	FUZZ_CHECK(!sb.overflow, "joined text overflow");
	FUZZ_EXPECT_BYTES("joined text", buf, sb.len, want, n);
	if (have) {
		FUZZ_CHECK(r.code == first.code && r.event == first.event &&
			   strcmp(r.stage, first.stage) == 0, "joined codes are not the first line's");
		FUZZ_CHECK(first.enhanced[0] == '\0' || strcmp(r.enhanced, first.enhanced) == 0,
			   "joined enhanced %s, first line's %s", r.enhanced, first.enhanced);
	}

	size_t ll = strlen(lines), gl = strlen(garbage);
	char *both = malloc(ll + gl + 2);
	if (both == NULL)
		abort();
	memcpy(both, lines, ll);
	both[ll] = '\n';
	memcpy(both + ll + 1, garbage, gl + 1);
	sbuf_init(&sb2, buf2, sizeof buf2);
	bool found2 = reply_join(both, &r2, &sb2);
	free(both);
	if (found) {
		FUZZ_CHECK(found2 && r2.code == r.code && r2.event == r.event &&
			   strcmp(r2.stage, r.stage) == 0 &&
			   (r.enhanced[0] == '\0' || strcmp(r2.enhanced, r.enhanced) == 0),
			   "garbage lines changed the codes found");
	}
	FUZZ_CHECK(sb2.len >= sb.len && memcmp(buf2, buf, sb.len) == 0,
		   "garbage lines changed the joined text before them");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct reply r, again;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	size_t tl = strlen(text);
	const char *garbage = tl < size ? text + tl + 1 : "";

	bool found = reply_parse(text, &r);
	prop_codes(text, &r, found);
	prop_event(text, &r);
	prop_text(text, &r);
	bool found2 = reply_parse(text, &again);
	expect_same(&r, text, &again, text, found, found2);
	prop_garbage(text, garbage, &r, found);
	prop_join(text, garbage);
	free(text);
	return 0;
}
