/*
 * NAME
 *	codes - the SMTP reply-code knowledge base
 * SYNOPSIS
 *	struct explanation ex;
 *	int known = codes_explain(550, "5.1.1", &ex);
 *	codes_summary(&ex, &sb);		one line, for logs and headers
 *	codes_describe(&ex, &sb, 80);		several lines, for a person
 * DESCRIPTION
 *	The table is codes.def, compiled in (no run-time file). A basic code is
 *	looked up as itself; an enhanced code c.s.d as "X.s.d", with its
 *	subject "X.s.X" and class "c.X.X" as context. A code with no entry is
 *	still explained by its class (first digit) and, for basic codes, its
 *	category (second digit, RFC 5321 4.2.1), and said to be unregistered.
 *	Read-only after a one-time index build (thread-safe, pthread_once).
 */
#ifndef SMTPTRACE_CODES_H
#define SMTPTRACE_CODES_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

enum code_fate {
	FATE_DELIVERED, FATE_WAITING, FATE_RETRY, FATE_BOUNCED,
	FATE_BY_CLASS, FATE_NONE
};

enum code_actor {
	ACTOR_NOBODY, ACTOR_SENDER, ACTOR_SENDER_ADMIN, ACTOR_RECEIVER_ADMIN,
	ACTOR_CLIENT
};

struct code_entry {
	const char     *key;
	enum code_fate  fate;
	enum code_actor actor;
	const char     *meaning;
	const char     *advice;
	const char     *reference;
};

#define CODES_ENHANCED_MAX 16	/* "5.123.123" and a NUL, with room */

struct explanation {
	int   basic;			/* -1: none */
	char  enhanced[CODES_ENHANCED_MAX];	/* "": none */
	char  class_digit;		/* the class that decides: basic's, else enhanced's */
	const struct code_entry *basic_entry;	/* NULL: not registered */
	const struct code_entry *detail_entry;	/* "X.s.d"; NULL: not registered */
	const struct code_entry *subject_entry;	/* "X.s.X" */
	bool  conflict;			/* basic and enhanced classes differ */
};

size_t codes_count(void);
const struct code_entry *codes_at(size_t i);
/* Exact key: "550", "X.1.1", "X.1.X", "5.X.X". */
const struct code_entry *codes_lookup(const char *key);

/*
 * Explain a basic code (-1 for none) and an enhanced code (NULL or "" for
 * none; must be c.s.d with c in 2, 4, 5). Returns true when every code
 * given has an entry.
 */
bool codes_explain(int basic, const char *enhanced, struct explanation *ex);

const char *codes_class_name(char class_digit);
const char *codes_fate_text(enum code_fate fate, char class_digit);
const char *codes_actor_text(enum code_actor actor);

/* "550 5.1.1: permanent failure; <meaning>; <enhanced meaning>" */
void codes_summary(const struct explanation *ex, struct sbuf *sb);
/* The full explanation, wrapped at width columns, ending in a newline. */
void codes_describe(const struct explanation *ex, struct sbuf *sb, int width);

#endif
