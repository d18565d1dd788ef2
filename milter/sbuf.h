/*
 * NAME
 *	sbuf - bounded string builder
 * SYNOPSIS
 *	struct sbuf sb; sbuf_init(&sb, buf, sizeof buf); sbuf_puts(&sb, "x");
 * DESCRIPTION
 *	Appends into a caller-owned buffer that stays NUL-terminated. Output
 *	that does not fit is dropped and sets the overflow flag; nothing is
 *	ever written past the buffer. No allocation, no global state.
 */
#ifndef SMTPTRACE_SBUF_H
#define SMTPTRACE_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char   *buf;
	size_t  cap;		/* bytes in buf, including the NUL */
	size_t  len;		/* bytes written, excluding the NUL */
	bool    overflow;	/* something did not fit */
};

void sbuf_init(struct sbuf *sb, char *buf, size_t cap);
void sbuf_putc(struct sbuf *sb, char c);
void sbuf_putn(struct sbuf *sb, const char *s, size_t n);
void sbuf_puts(struct sbuf *sb, const char *s);
void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Shorten to len bytes (len <= current length). */
void sbuf_truncate(struct sbuf *sb, size_t len);

#endif
