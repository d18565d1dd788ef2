/*
 * NAME
 *	maillog - turn one mail log line into a normalized event
 * SYNOPSIS
 *	struct maillog_event ev;
 *	maillog_classify(line, len, &ev);
 *	switch (ev.kind) { case MAILLOG_TXN: ... ev.txn.outcome ... }
 * DESCRIPTION
 *	Reads a line as syslog writes it (classic "Dec  1 22:21:29 host
 *	prog[pid]: msg", RFC 3339 "2026-12-01T22:21:29.123+00:00 host
 *	prog[pid]: msg"), as Postfix's postlogd writes it ("Dec 01 ..."), or
 *	as smtptrace-milter -f writes it ("smtptrace[99]: msg", no date), and
 *	says what it means for a transaction: an smtptrace transaction line
 *	(kind=txn, key=value or JSON, recognised by its body, not by the
 *	program name, which log.ident may change), or an MTA line that opens,
 *	decides, delivers or ends a transaction. Lines that matter for none
 *	are MAILLOG_OTHER.
 *
 *	One function per MTA turns its lines into events, chosen by the
 *	program name: Postfix ("postfix/smtpd", any name with a '/'; in
 *	maillog.c) and Sendmail ("sendmail", "sm-mta" and Debian's other
 *	"sm-*" names; maillog_sendmail.c). Decisive lines carry the outcome
 *	they prove (outcome.def), the reply as the MTA logged it and the
 *	enhanced code; a 3-digit code only where the MTA logs one or its
 *	source fixes it (Postfix: 552 5.3.4 for the queue file size limit, 451
 *	4.3.0 for a queue file write error; Sendmail: 552 5.2.3 for its size
 *	limit, 550 5.1.1 for an unknown local user, 421 4.4.1 for a data
 *	timeout).
 *
 *	Pure: no I/O, no allocation, no global state. Text fields of the
 *	event point into the line (valid while it is) or are copied, decoded,
 *	into the event with fixed caps; a value cut at its cap ends in "...".
 */
#ifndef SMTPTRACE_MAILLOG_H
#define SMTPTRACE_MAILLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "outcome.h"

#define MAILLOG_QID_MAX		32	/* Postfix long ids are < 20; with NUL */
#define MAILLOG_SESSION_MAX	24
#define MAILLOG_CLIENT_MAX	160	/* "name[addr]:port" */
#define MAILLOG_ADDR_MAX	64	/* an IP address as logged */
#define MAILLOG_FROM_MAX	300	/* "<local@domain>" */
#define MAILLOG_REJECTS_MAX	1024
#define MAILLOG_REPLY_MAX	64	/* the milter's implied reply, "421 4.4.2" */
#define MAILLOG_NAME_MAX	32	/* an outcome name */
#define MAILLOG_ENHANCED_MAX	16
#define MAILLOG_REPLY_TEXT_MAX	256	/* a refusal's reply */

enum maillog_kind {
	MAILLOG_OTHER,		/* nothing a verdict needs */
	MAILLOG_TXN,		/* an smtptrace transaction line (kind=txn) */
	MAILLOG_CLIENT,		/* a queue id opened by an smtpd (QID: client=) */
	MAILLOG_DECISION,	/* a line that proves how the transaction ended */
	MAILLOG_DELIVERY,	/* a delivery attempt: status, dsn, relay */
	MAILLOG_REMOVED,	/* the queue file is gone (QID: removed) */
	MAILLOG_SESSION_END,	/* the smtpd session is over (disconnect from) */
	MAILLOG_TXN_END,	/* a transaction with no message is over
				   (Sendmail: QID: from=<..>, size=0, ...) */
};

/* What an smtptrace kind=txn line says; strings decoded, capped. */
struct maillog_txn {
	char      session[MAILLOG_SESSION_MAX];
	long long txn;			/* -1: not given */
	char      client[MAILLOG_CLIENT_MAX];
	char      from[MAILLOG_FROM_MAX];
	int       outcome;		/* enum outcome; -1: unknown name */
	char      outcome_name[MAILLOG_NAME_MAX];	/* as logged */
	long long upload_ms;		/* -1: not given */
	long long in_data_ms;		/* -1: not given */
	bool      stalled;
	long long rcpt;			/* -1: not given */
	long long rcpt_rejected;	/* -1: not given */
	char      rejects[MAILLOG_REJECTS_MAX];
	char      reply[MAILLOG_REPLY_MAX];	/* "421 4.4.2", "5xx 5.7.1" */
	int       reply_code;		/* of reply: 421; -1 none or a class */
	char      reply_enhanced[MAILLOG_ENHANCED_MAX];	/* of reply: "4.4.2" */
};

/* A piece of the line: not NUL-terminated. */
struct maillog_text {
	const char *s;
	size_t      len;
};

struct maillog_event {
	enum maillog_kind kind;
	char   queue_id[MAILLOG_QID_MAX];	/* "": none (NOQUEUE) */
	long   pid;			/* of the program that logged it; -1 none */
	/* MAILLOG_CLIENT and decisions that name the client */
	char   client_addr[MAILLOG_ADDR_MAX];	/* "127.0.0.1"; "" none */
	long   client_port;		/* -1: not logged */
	/* MAILLOG_DECISION */
	enum outcome outcome;		/* what the line proves */
	bool   by_pid;			/* no queue id: join by the smtpd pid */
	bool   during_upload;		/* logged before the client's final dot:
					   final only once the session moved on
					   (Postfix cleanup), or a refused
					   recipient (Sendmail): no valid
					   recipients only if the transaction
					   ends with none accepted */
	int    code;			/* 3-digit; -1 not known */
	char   enhanced[MAILLOG_ENHANCED_MAX];	/* "" none */
	/* The reply the client got, as well as the line tells: as logged
	 * ("554 5.7.1 <a@b>: ..."), with the class for a logged enhanced code
	 * alone ("5xx 5.7.1 text"), or the text the MTA's source fixes ("552
	 * 5.3.4 Error: message file too big"); "": none known */
	char   reply[MAILLOG_REPLY_TEXT_MAX];
	long long bytes;		/* "(N bytes)"; -1 none */
	struct maillog_text sender;	/* from=<...> of a refused DATA */
	/* MAILLOG_DELIVERY */
	struct maillog_text status, dsn, relay;
	bool   proves_queued;		/* the line is also the proof that the
					   message was queued (Sendmail logs
					   none when it queues): outcome and
					   reply are set as for a decision */
	/* MAILLOG_TXN_END */
	long long rcpts;		/* recipients accepted; -1 not logged */
	/* every kind: the message part of the line (after "prog[pid]: ") */
	struct maillog_text message;
	/* MAILLOG_TXN */
	struct maillog_txn txn;
};

/* Classify one line (len bytes, need not be NUL-terminated); returns ev->kind. */
enum maillog_kind maillog_classify(const char *line, size_t len,
				   struct maillog_event *ev);

/*
 * For the classifiers of each MTA (maillog.c, maillog_sendmail.c) only:
 * the line as split by maillog.c, and the scanners they share. All work
 * on [p, end) and never read past end.
 */
struct maillog_prefix {
	const char *prog;	/* "postfix/smtpd"; NULL: none */
	size_t      prog_len;
	long        pid;	/* -1: none */
	const char *msg;	/* the message part */
	const char *end;	/* end of the line */
};

bool maillog_starts(const char *p, const char *end, const char *word);
const char *maillog_find(const char *p, const char *end, const char *needle);
/* Decimal digits at p (-1: none); *stop, when not NULL, past them. */
long long maillog_number(const char *p, const char *end, const char **stop);
/* A queue id ("NOQUEUE" included) and ": " at p: its length, else 0. */
size_t maillog_qid_len(const char *p, const char *end);
void maillog_set_qid(struct maillog_event *ev, const char *p, size_t n);
/* The reply as logged, [p, stop): "554 5.7.1 text" or "5.7.1 text". */
void maillog_set_reply(const char *p, const char *stop, struct maillog_event *ev);
/* A reply the MTA's source fixes, not its log line. */
void maillog_set_fixed_reply(struct maillog_event *ev, int code, const char *enhanced,
			     const char *text);
void maillog_decision(struct maillog_event *ev, enum outcome o, bool during_upload);

bool maillog_sendmail_claims(const struct maillog_prefix *px);
void maillog_sendmail_classify(const struct maillog_prefix *px, struct maillog_event *ev);

#endif
