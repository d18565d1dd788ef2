/*
 * NAME
 *	escape - make untrusted strings safe for log lines, JSON and headers
 * DESCRIPTION
 *	See escape.h. Pure functions over caller buffers.
 */
#include "escape.h"

#include <stdbool.h>
#include <string.h>

static size_t utf8_boundary(const char *value, size_t n);

static bool
kv_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

/* RFC 2045 token: printable ASCII except space and tspecials; and not the
 * '%' of the header's own encoding. */
static bool
header_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=%", c) == NULL;
}

static size_t
input_len(const char *value, size_t max, bool *cut)
{
	size_t n = strnlen(value, max + 1);
	*cut = n > max;
	return *cut ? max : n;
}

/* The log's quoted form: \" \\ \r \n \t \xHH. */
static void
put_c_escaped(struct sbuf *sb, const char *value, size_t n, bool cut)
{
	static const char hex[] = "0123456789abcdef";

	sbuf_putc(sb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		switch (c) {
		case '"':  sbuf_puts(sb, "\\\""); break;
		case '\\': sbuf_puts(sb, "\\\\"); break;
		case '\r': sbuf_puts(sb, "\\r"); break;
		case '\n': sbuf_puts(sb, "\\n"); break;
		case '\t': sbuf_puts(sb, "\\t"); break;
		default:
			if (c < 0x20 || c >= 0x7f) {
				char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
				sbuf_putn(sb, esc, sizeof esc);
			} else {
				sbuf_putc(sb, (char)c);
			}
		}
	}
	if (cut)
		sbuf_puts(sb, ESCAPE_CUT_MARK);
	sbuf_putc(sb, '"');
}


/*
 * A quoted-string a standard RFC 5322 parser reads back exactly: '"' and
 * '\\' as quoted-pairs, and every byte outside printable ASCII, and '%'
 * itself, as %HH (URL style). Unquote, then percent-decode: the value.
 */
static void
put_header_quoted(struct sbuf *sb, const char *value, size_t n, bool cut)
{
	static const char hex[] = "0123456789ABCDEF";

	sbuf_putc(sb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == '"' || c == '\\') {
			char pair[2] = { '\\', (char)c };
			sbuf_putn(sb, pair, sizeof pair);
		} else if (c < 0x20 || c >= 0x7f || c == '%') {
			char pct[3] = { '%', hex[c >> 4], hex[c & 15] };
			sbuf_putn(sb, pct, sizeof pct);
		} else {
			sbuf_putc(sb, (char)c);
		}
	}
	if (cut)
		sbuf_puts(sb, ESCAPE_CUT_MARK);
	sbuf_putc(sb, '"');
}

typedef void (*quote_fn)(struct sbuf *, const char *, size_t, bool);

/* Bare when every byte is, else quoted; a cut value ends in the cut mark. */
static void
escape_with(struct sbuf *sb, const char *value, size_t max,
	    bool (*bare)(unsigned char), quote_fn quote)
{
	bool cut;
	size_t n;

	if (value == NULL)
		value = "";
	n = input_len(value, max, &cut);
	if (cut)
		n = utf8_boundary(value, n);
	bool all_bare = n > 0;
	for (size_t i = 0; all_bare && i < n; i++)
		all_bare = bare((unsigned char)value[i]);
	if (all_bare) {
		sbuf_putn(sb, value, n);
		if (cut)
			sbuf_puts(sb, ESCAPE_CUT_MARK);
		return;
	}
	quote(sb, value, n, cut);
}

void
escape_kv(struct sbuf *sb, const char *value, size_t max)
{
	escape_with(sb, value, max, kv_bare, put_c_escaped);
}

void
escape_header(struct sbuf *sb, const char *value, size_t max)
{
	escape_with(sb, value, max, header_bare, put_header_quoted);
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
utf8_len(const unsigned char *p, size_t avail)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > avail)
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;		/* above U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A cut must not split a character: back off to its first byte. */
static size_t
utf8_boundary(const char *value, size_t n)
{
	size_t back = 0;

	while (back < 3 && back < n && ((unsigned char)value[n - back] & 0xc0) == 0x80)
		back++;
	return ((unsigned char)value[n - back] & 0xc0) == 0x80 ? n : n - back;
}

/*
 * Well-formed UTF-8 passes through as it is (an SMTPUTF8 address stays
 * readable); any other byte >= 0x80 is written \u00XX. Since every real
 * character in that range would have come as UTF-8, \u0080-\u00ff in the
 * output always names a raw byte, and the input can be rebuilt exactly.
 */
void
escape_json(struct sbuf *sb, const char *value, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	bool cut;
	size_t n;

	if (value == NULL)
		value = "";
	n = input_len(value, max, &cut);
	if (cut)
		n = utf8_boundary(value, n);
	sbuf_putc(sb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		size_t seq;
		switch (c) {
		case '"':  sbuf_puts(sb, "\\\""); break;
		case '\\': sbuf_puts(sb, "\\\\"); break;
		case '\r': sbuf_puts(sb, "\\r"); break;
		case '\n': sbuf_puts(sb, "\\n"); break;
		case '\t': sbuf_puts(sb, "\\t"); break;
		default:
			if (c >= 0x80 && (seq = utf8_len((const unsigned char *)value + i,
							 n - i)) > 0) {
				sbuf_putn(sb, value + i, seq);
				i += seq - 1;
			} else if (c < 0x20 || c >= 0x7f) {
				char esc[6] = { '\\', 'u', '0', '0',
						hex[c >> 4], hex[c & 15] };
				sbuf_putn(sb, esc, sizeof esc);
			} else {
				sbuf_putc(sb, (char)c);
			}
		}
	}
	if (cut)
		sbuf_puts(sb, ESCAPE_CUT_MARK);
	sbuf_putc(sb, '"');
}

void
text_copy(char *dst, size_t size, const char *src)
{
	size_t mark = sizeof ESCAPE_CUT_MARK - 1;

	if (size == 0)
		return;
	if (src == NULL)
		src = "";
	size_t n = strnlen(src, size);
	if (n < size) {
		memcpy(dst, src, n + 1);
		return;
	}
	if (size <= mark) {
		dst[0] = '\0';
		return;
	}
	n = utf8_boundary(src, size - 1 - mark);
	memcpy(dst, src, n);
	memcpy(dst + n, ESCAPE_CUT_MARK, mark + 1);
}
