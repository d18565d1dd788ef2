/*
 * NAME
 *	escape - make untrusted strings safe for log lines, JSON and headers
 * SYNOPSIS
 *	escape_kv(&sb, value, max);	bare token or "quoted" with C escapes
 *	escape_json(&sb, value, max);	JSON string, ASCII only
 *	escape_header(&sb, value, max);	RFC 2045 token or quoted-string, ASCII
 *	text_copy(dst, size, src);	capped copy, "..." marks a cut
 * DESCRIPTION
 *	Every value an MTA or a client supplies (HELO name, addresses, reply
 *	text, macro values) passes through one of these before it reaches a
 *	log line or a header. CR, LF, NUL-free control bytes, quotes,
 *	backslashes and 8-bit bytes never come out raw. At most max bytes of
 *	the input are used; when the input is longer, "..." follows the part
 *	kept. Pure: no I/O, no global state.
 */
#ifndef SMTPTRACE_ESCAPE_H
#define SMTPTRACE_ESCAPE_H

#include <stddef.h>

#include "sbuf.h"

#define ESCAPE_CUT_MARK "..."

void escape_kv(struct sbuf *sb, const char *value, size_t max);
void escape_json(struct sbuf *sb, const char *value, size_t max);
void escape_header(struct sbuf *sb, const char *value, size_t max);

/* Copy src into dst (size bytes); a cut copy ends in "...". NULL src gives "". */
void text_copy(char *dst, size_t size, const char *src);

#endif
