/*
 * NAME
 *	escape - make untrusted strings safe for log lines, JSON and headers
 * SYNOPSIS
 *	escape_kv(&sb, value, max);	bare token or "quoted" with C escapes
 *	escape_json(&sb, value, max);	JSON string; valid UTF-8 kept, other bytes \u00XX
 *	escape_header(&sb, value, max);	RFC 2045 token or quoted-string, %HH inside
 *	text_copy(dst, size, src);	capped copy, "..." marks a cut
 * DESCRIPTION
 *	Every value an MTA or a client supplies (HELO name, addresses, reply
 *	text, macro values) passes through one of these before it reaches a
 *	log line or a header. CR, LF, control bytes, quotes and backslashes
 *	never come out raw; 8-bit bytes neither, except well-formed UTF-8 in
 *	JSON. Each form can be undone exactly: key=value by its C escapes,
 *	JSON by its parser (\u0080-\u00ff name raw bytes, as real characters
 *	there would have come as UTF-8), the header by unquoting, then
 *	percent-decoding. At most max bytes of the input are used (never
 *	half a UTF-8 character); when the input is longer, "..." follows the
 *	part kept. Pure: no I/O, no global state.
 */
#ifndef SMTPTRACE_ESCAPE_H
#define SMTPTRACE_ESCAPE_H

#include <stddef.h>

#include "sbuf.h"

#define ESCAPE_CUT_MARK "..."

void escape_kv(struct sbuf *sb, const char *value, size_t max);
void escape_json(struct sbuf *sb, const char *value, size_t max);
void escape_header(struct sbuf *sb, const char *value, size_t max);

/* Copy src into dst (size bytes); a cut copy ends in "..." (never inside a
 * UTF-8 character). NULL src gives "". */
void text_copy(char *dst, size_t size, const char *src);

#endif
