/*
 * NAME
 *	top_str - untrusted strings made safe for a terminal, cut to a width
 * DESCRIPTION
 *	See top_str.h. One character at a time: next_char() decodes one
 *	UTF-8 sequence strictly (RFC 3629) and says how many bytes to copy
 *	and how many columns they take, or that a '?' stands in for it.
 */
#include "top_str.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct glyph {
	size_t len;		/* bytes of the source it consumes */
	int cols;		/* 1 or 2 */
	bool replace;		/* show '?' instead of the bytes */
};

/* Zero-width, joiner, direction and other format characters. */
static bool
is_format(uint32_t cp)
{
	return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
	       (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || cp == 0x00AD ||
	       (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
	       (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xE0000 && cp <= 0xE007F);
}

/* East Asian wide and fullwidth ranges (the common ones) and emoji. */
static bool
is_wide(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
	       (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
	       (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
	       (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
	       (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
	       (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

static struct glyph
next_char(const unsigned char *s, int flags)
{
	struct glyph g = { .len = 1, .cols = 1, .replace = true };
	unsigned char c = s[0];
	uint32_t cp, min;
	size_t n;

	if (c < 0x80) {
		g.replace = c < 0x20 || c == 0x7F;
		return g;
	}
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return g;			/* a stray continuation or 0xC0/C1/F5+ */
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return g;		/* cut short (a NUL ends it too) */
		cp = cp << 6 | (s[i] & 0x3F);
	}
	g.len = n;
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return g;			/* overlong, too big, a surrogate */
	if (cp <= 0x9F || is_format(cp) || (flags & TOP_ASCII) ||
	    (cp & 0xFFFE) == 0xFFFE || (cp >= 0xFDD0 && cp <= 0xFDEF))
		return g;			/* C1, format, non-characters */
	g.replace = false;
	g.cols = is_wide(cp) ? 2 : 1;
	return g;
}

int
top_width(const char *s, int flags)
{
	int cols = 0;

	if (s == NULL)
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; ) {
		struct glyph g = next_char(p, flags);
		cols += g.cols;
		p += g.len;
	}
	return cols;
}

/* Appends up to room columns of s; returns the columns used, *end the stop. */
static int
put_cols(struct sbuf *sb, const char *s, int room, int flags, const char **end)
{
	const unsigned char *p = (const unsigned char *)s;
	int used = 0;

	while (*p) {
		struct glyph g = next_char(p, flags);
		if (used + g.cols > room)
			break;
		if (g.replace)
			sbuf_putc(sb, '?');
		else
			sbuf_putn(sb, (const char *)p, g.len);
		used += g.cols;
		p += g.len;
	}
	*end = (const char *)p;
	return used;
}

int
top_fit(struct sbuf *sb, const char *s, int cols, int flags)
{
	const char *end;
	int used;

	if (cols <= 0)
		return 0;
	if (s == NULL)
		s = "-";
	if (top_width(s, flags) <= cols) {
		used = put_cols(sb, s, cols, flags, &end);
	} else if (cols <= 3) {
		used = put_cols(sb, "...", cols, 0, &end);
	} else {
		used = put_cols(sb, s, cols - 3, flags, &end);
		sbuf_puts(sb, "...");
		used += 3;
	}
	for (; (flags & TOP_PAD) && used < cols; used++)
		sbuf_putc(sb, ' ');
	return used;
}

char *
top_strndup(const char *s, size_t len, size_t cap)
{
	bool cut = len > cap;
	size_t keep = cut ? (cap > 3 ? cap - 3 : 0) : len;
	char *copy = malloc(keep + 4);

	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < keep; i++)
		copy[i] = s[i] == '\0' ? '\x7f' : s[i];
	if (cut) {
		/* do not leave half a UTF-8 sequence before the dots */
		size_t back = keep;
		while (back > 0 && keep - back < 3 &&
		       ((unsigned char)copy[back - 1] & 0xC0) == 0x80)
			back--;
		if (back > 0 && ((unsigned char)copy[back - 1] & 0xC0) == 0xC0)
			keep = back - 1;
		memcpy(copy + keep, "...", 3);
		keep += 3;
	}
	copy[keep] = '\0';
	return copy;
}
