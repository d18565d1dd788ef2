/*
 * NAME
 *	render - write a record as a log line (key=value or JSON) or a header
 * SYNOPSIS
 *	render_kv(&rec, &sb);
 *	render_json(&rec, &sb);
 *	render_header(&rec, authserv_id, strlen(header_name), &sb);
 * DESCRIPTION
 *	The key=value line starts with the queue id (or NOQUEUE) and a colon,
 *	like Postfix's own lines, so both logs grep together. The header is
 *	in RFC 8601 style: the authserv-id, then "key=value" items separated
 *	by "; ", folded with "\n\t" before an item, and inside a long quoted
 *	value before a space (RFC 5322 folding: unfolding gives the value
 *	back), so that lines stay within 78 columns where a value has spaces,
 *	never over 998; ASCII only. Every value is escaped
 *	and capped (RENDER_LOG_VALUE_MAX, RENDER_HEADER_VALUE_MAX input bytes).
 *	Pure: no I/O.
 */
#ifndef SMTPTRACE_RENDER_H
#define SMTPTRACE_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "record.h"
#include "sbuf.h"

#define RENDER_LOG_VALUE_MAX	512
#define RENDER_HEADER_VALUE_MAX	200
#define RENDER_HEADER_WIDTH	78
/* Room for every header field at its cap, escaped (4 bytes a byte). */
#define RENDER_HEADER_MAX	(RECORD_FIELDS_MAX * (RENDER_HEADER_VALUE_MAX * 4 + 72))

void render_kv(const struct record *r, struct sbuf *sb);
void render_json(const struct record *r, struct sbuf *sb);
/* The same with each value capped at value_max input bytes (log.c shortens
 * the values of a record too long for one syslog message). */
void render_kv_max(const struct record *r, size_t value_max, struct sbuf *sb);
void render_json_max(const struct record *r, size_t value_max, struct sbuf *sb);
/*
 * name_len: length of the header name, for the first line's width;
 * with_explain: include the plain-words fields (header.explain).
 */
void render_header(const struct record *r, const char *authserv_id,
		   size_t name_len, bool with_explain, struct sbuf *sb);
/* The fallback when the full header does not fit: session and outcome only. */
void render_header_short(const struct record *r, const char *authserv_id,
			 struct sbuf *sb);

#endif
