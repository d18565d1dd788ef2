/*
 * NAME
 *	sbuf - bounded string builder
 * DESCRIPTION
 *	See sbuf.h. Pure; safe from any thread on distinct buffers.
 */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
sbuf_init(struct sbuf *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	sb->overflow = false;
	if (cap > 0)
		buf[0] = '\0';
	else
		sb->overflow = true;
}

void
sbuf_putn(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->cap == 0)
		return;
	size_t room = sb->cap - 1 - sb->len;
	if (n > room) {
		n = room;
		sb->overflow = true;
	}
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void
sbuf_putc(struct sbuf *sb, char c)
{
	sbuf_putn(sb, &c, 1);
}

void
sbuf_puts(struct sbuf *sb, const char *s)
{
	sbuf_putn(sb, s, strlen(s));
}

void
sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	if (sb->cap == 0)
		return;
	size_t room = sb->cap - sb->len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(sb->buf + sb->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->buf[sb->len] = '\0';
		sb->overflow = true;
		return;
	}
	if ((size_t)n >= room) {
		sb->len = sb->cap - 1;
		sb->overflow = true;
	} else {
		sb->len += (size_t)n;
	}
}

void
sbuf_truncate(struct sbuf *sb, size_t len)
{
	if (sb->cap == 0 || len >= sb->len)
		return;
	sb->len = len;
	sb->buf[len] = '\0';
}
