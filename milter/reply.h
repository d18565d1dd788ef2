/*
 * NAME
 *	reply - find the reply codes in an SMTP reply or a mail log line
 * SYNOPSIS
 *	struct reply r;
 *	if (reply_parse(line, &r)) ... r.code, r.enhanced, r.event, r.stage
 * DESCRIPTION
 *	Takes one line as MTAs and providers really write it: a bare reply
 *	("550 5.1.1 <a@b>: User unknown", "550-5.7.1 ..." continuation lines),
 *	one without an enhanced code, lowercase, with the enhanced code in
 *	parentheses or after '#' (qmail's "(#5.1.1)"), or a whole log line
 *	carrying one ("said: 550 ...", "NOQUEUE: reject: RCPT from ...: 554
 *	5.7.1 ...", "status=bounced (...)", "dsn=5.1.1"), and Postfix's
 *	"timeout after STAGE" / "lost connection after STAGE" lines. A reply's
 *	text runs from after its codes to the end of the line. Only the
 *	first line (and its first REPLY_LINE_MAX - 1 bytes) is read; multi-line
 *	replies: reply_join() merges continuation lines into one text.
 *	Pure, no allocation; work linear in the line.
 */
#ifndef SMTPTRACE_REPLY_H
#define SMTPTRACE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

/* Bytes of one line looked at; a longer line is parsed on its first part. */
#define REPLY_LINE_MAX 8192

enum reply_event {
	REPLY_EVENT_NONE,
	REPLY_EVENT_TIMEOUT,		/* "timeout after STAGE" */
	REPLY_EVENT_LOST,		/* "lost connection after STAGE" */
};

struct reply {
	int              code;		/* -1: none found */
	char             enhanced[12];	/* "": none found */
	bool             continued;	/* "550-..." : more lines follow */
	enum reply_event event;
	char             stage[24];	/* "DATA", "END-OF-MESSAGE", ... */
	const char      *text;		/* into the input; NULL without a code */
	size_t           text_len;
};

/* Returns true when the line has a code, an enhanced code or an event. */
bool reply_parse(const char *line, struct reply *r);

/*
 * Join a multi-line reply ("550-5.1.1 a\n550-5.1.1 b\n550 5.1.1 c") into
 * one text ("a b c"); r gets the codes of the first line.
 */
bool reply_join(const char *lines, struct reply *r, struct sbuf *text);

#endif
