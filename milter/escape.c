/*
 * NAME
 *	escape - make untrusted strings safe for log lines, JSON and headers
 * DESCRIPTION
 *	See escape.h. Pure functions over caller buffers.
 */
#include "escape.h"

#include <stdbool.h>
#include <string.h>

static bool
kv_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

/* RFC 2045 token: printable ASCII except space and tspecials. */
static bool
header_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t
input_len(const char *value, size_t max, bool *cut)
{
	size_t n = strnlen(value, max + 1);
	*cut = n > max;
	return *cut ? max : n;
}

/* Quoted form shared by the log and the header: \" \\ \r \n \t \xHH. */
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

static void
escape_with(struct sbuf *sb, const char *value, size_t max,
	    bool (*bare)(unsigned char))
{
	bool cut;
	size_t n;

	if (value == NULL)
		value = "";
	n = input_len(value, max, &cut);
	bool all_bare = n > 0;
	for (size_t i = 0; all_bare && i < n; i++)
		all_bare = bare((unsigned char)value[i]);
	if (all_bare) {
		sbuf_putn(sb, value, n);
		if (cut)
			sbuf_puts(sb, ESCAPE_CUT_MARK);
		return;
	}
	put_c_escaped(sb, value, n, cut);
}

void
escape_kv(struct sbuf *sb, const char *value, size_t max)
{
	escape_with(sb, value, max, kv_bare);
}

void
escape_header(struct sbuf *sb, const char *value, size_t max)
{
	escape_with(sb, value, max, header_bare);
}

void
escape_json(struct sbuf *sb, const char *value, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	bool cut;
	size_t n;

	if (value == NULL)
		value = "";
	n = input_len(value, max, &cut);
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
				/* 8-bit bytes are not known to be UTF-8: keep
				 * the output valid JSON by naming the byte. */
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
	n = size - 1 - mark;
	memcpy(dst, src, n);
	memcpy(dst + n, ESCAPE_CUT_MARK, mark + 1);
}
