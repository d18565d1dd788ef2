/*
 * NAME
 *	top_str - untrusted strings made safe for a terminal, cut to a width
 * SYNOPSIS
 *	#include "top_str.h"
 *
 *	int top_fit(struct sbuf *sb, const char *s, int cols, int flags);
 *	int top_width(const char *s, int flags);
 *	char *top_strndup(const char *s, size_t len, size_t cap);
 * DESCRIPTION
 *	Every string smtptrace-top shows comes from the network (a client's
 *	HELO name, a sender, a milter that may not be one). top_fit() appends
 *	s to sb as at most cols terminal columns: C0 and C1 control
 *	characters, DEL, invalid or overlong UTF-8, surrogates, and
 *	zero-width or direction-changing format characters become '?'; with
 *	TOP_ASCII every non-ASCII character does too (a terminal that is not
 *	UTF-8). East Asian wide characters count two columns. A string wider
 *	than cols ends in "..."; TOP_PAD pads with spaces to cols. A NULL s
 *	reads "-". Returns the columns written.
 *
 *	top_width() is the width top_fit() would give s uncut.
 *
 *	top_strndup() copies at most cap bytes of s (len bytes, which may hold
 *	NUL bytes: those become DEL, shown '?'); the copy of a longer string
 *	ends in "..." within cap. NULL when out of memory.
 *
 *	Pure; no locale, no global state.
 */
#ifndef SMTPTRACE_TOP_STR_H
#define SMTPTRACE_TOP_STR_H

#include <stddef.h>

#include "sbuf.h"

#define TOP_ASCII	0x1	/* non-ASCII as '?' */
#define TOP_PAD		0x2	/* pad with spaces to cols */

int top_fit(struct sbuf *sb, const char *s, int cols, int flags);
int top_width(const char *s, int flags);
char *top_strndup(const char *s, size_t len, size_t cap);

#endif
