/*
 * NAME
 *	record - the fields one log line or one header reports
 * SYNOPSIS
 *	struct record r;
 *	record_txn(&r, session, outcome, end_ms);	at eom, abort, close
 *	record_conn(&r, session, now_ms);		at close
 * DESCRIPTION
 *	Gathers what a transaction or a connection showed into an ordered list
 *	of named fields, once; render.c then writes the same list as a
 *	key=value line, a JSON object or the diagnostic header, so the three
 *	can never disagree. Field names are the documented, stable ones.
 *	Values still hold raw MTA-supplied bytes: escaping is the renderer's.
 *	The record points into the session: use it before the session changes.
 */
#ifndef SMTPTRACE_RECORD_H
#define SMTPTRACE_RECORD_H

#include <stdint.h>

#include "outcome.h"
#include "registry.h"
#include "session.h"

#define RECORD_FIELDS_MAX	32

enum field_kind {
	FIELD_TEXT,
	FIELD_NUM,
	FIELD_TIMELINE,		/* the record's timeline list */
};

#define FIELD_LOG_ONLY	0x1	/* not in the header */
#define FIELD_HEADER_ONLY 0x2	/* in the header; a log line has it as its prefix */
#define FIELD_EXPLAIN	0x4	/* in the header only with header.explain */

struct field {
	const char     *key;
	enum field_kind kind;
	unsigned        flags;
	const char     *text;
	int64_t         num;
};

struct timeline_item {
	const char *name;	/* phase name */
	int64_t     ms;		/* since connect */
};

struct record {
	const char          *queue_id;	/* NULL: NOQUEUE */
	size_t               nfields;
	struct field         fields[RECORD_FIELDS_MAX];
	size_t               ntimeline;
	struct timeline_item timeline[PHASE__COUNT];
	/* storage for values composed here */
	char client[SESSION_NAME_MAX + 80];
	char reply[64];
	char reply_explain[512];
	char rejects_explain[SESSION_REJECTS_KEPT * 200];
	char rejects[SESSION_REJECTS_KEPT * (SESSION_ADDR_MAX + SESSION_TEXT_MAX + 40)];
};

void record_txn(struct record *r, const struct session *s, enum outcome o,
		int64_t end_ms);
void record_conn(struct record *r, const struct session *s, int64_t now_ms);
/* A stall warning (the watchdog's copy of a transaction in DATA). */
void record_stall(struct record *r, const struct stall_view *v);

/* "name[addr]:port" of the session's client, "unknown" for no name. */
void record_client(const struct session *s, char *buf, size_t size);

/* A field by key, or NULL (for tests and callers that need one value). */
const struct field *record_get(const struct record *r, const char *key);

#endif
