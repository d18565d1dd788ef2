/*
 * NAME
 *	session - per-connection and per-transaction state of one SMTP session
 * SYNOPSIS
 *	struct session *s = session_create(id, now_ms);
 *	session_connect(s, name, addr, port, now_ms); ... session_free(s);
 * DESCRIPTION
 *	A session is one SMTP connection; it carries at most one transaction
 *	at a time (MAIL FROM to end of data, abort or close), and counts how
 *	many it has had. Every event function takes the time as an argument
 *	(milliseconds of a monotonic clock) and the raw values the MTA gave;
 *	values are copied with fixed caps, never trusted for length. Nothing
 *	here touches libmilter, the clock or the log: the callbacks feed it.
 *	One session is used by one thread at a time (libmilter serialises the
 *	callbacks of a connection), so there is no locking.
 */
#ifndef SMTPTRACE_SESSION_H
#define SMTPTRACE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define SESSION_ID_LEN		16	/* hex digits */
#define SESSION_NAME_MAX	256	/* client name, HELO name (with NUL) */
#define SESSION_ADDR_MAX	256	/* envelope addresses */
#define SESSION_QID_MAX		32
#define SESSION_SHORT_MAX	32	/* TLS version, enhanced status code */
#define SESSION_TEXT_MAX	256	/* reply text of a rejected recipient */
#define SESSION_REJECTS_KEPT	8	/* rejected recipients kept per transaction */

/* Phases of a transaction, in protocol order. */
enum phase {
	PHASE_CONNECT,
	PHASE_HELO,
	PHASE_MAIL,
	PHASE_RCPT,		/* first RCPT TO, accepted or rejected */
	PHASE_DATA,		/* DATA (or first BDAT): just before 354 */
	PHASE_HEADER,		/* first header: the upload has finished */
	PHASE_EOH,
	PHASE_BODY,		/* first body chunk */
	PHASE_EOM,
	PHASE_ABORT,
	PHASE_CLOSE,
	PHASE__COUNT
};

struct rejected_rcpt {
	char addr[SESSION_ADDR_MAX];
	char status[SESSION_SHORT_MAX];	/* enhanced code, e.g. 5.7.1 */
	char text[SESSION_TEXT_MAX];	/* reply text the MTA gave */
};

struct txn {
	unsigned  seq;			/* 1 for the first of the session */
	bool      active;		/* MAIL seen, not ended */
	int64_t   at[PHASE__COUNT];	/* monotonic ms; -1 = not seen */
	char      queue_id[SESSION_QID_MAX];
	char      sender[SESSION_ADDR_MAX];
	unsigned  rcpt_accepted;
	unsigned  rcpt_rejected;
	unsigned  rejects_kept;
	struct rejected_rcpt rejects[SESSION_REJECTS_KEPT];
	unsigned  headers;
	unsigned  own_headers;		/* incoming copies of our header name */
	uint64_t  header_bytes;
	uint64_t  body_bytes;
	struct stall_entry stall;	/* watched while in DATA (registry.h) */
	unsigned  stall_warnings;	/* stall warnings it got, once out of DATA */
};

struct config;

struct session {
	char      id[SESSION_ID_LEN + 1];
	/* the configuration snapshot of the current transaction (cfgstore.h),
	 * taken at connect and renewed at each MAIL; the callbacks own it */
	const struct config *cfg;
	int64_t   connect_at;
	int64_t   helo_at;		/* last HELO/EHLO; -1 = none */
	int64_t   last_txn_end;		/* end of the previous transaction; -1 = none */
	bool      connected;
	char      client_name[SESSION_NAME_MAX];
	char      client_addr[64];
	unsigned  client_port;
	const char *timeout_enhanced;	/* the MTA's data timeout code; "" unknown */
	char      helo[SESSION_NAME_MAX];	/* "" when said before TLS began */
	char      helo_before_tls[SESSION_NAME_MAX];
	unsigned  helo_count;
	char      tls_version[SESSION_SHORT_MAX];
	char      auth_user[SESSION_ADDR_MAX];	/* SASL login; "" = none */
	unsigned  txn_count;
	unsigned  unknown_cmds;
	unsigned long noreply;		/* SMFIP_NR_* bits agreed with the MTA */
	struct live_mark live;		/* its row in the table of open sessions (live.h) */
	struct txn txn;
};

struct session *session_create(const char *id, int64_t now_ms);
void session_free(struct session *s);

void session_connect(struct session *s, const char *client_name,
		     const char *client_addr, unsigned client_port,
		     int64_t now_ms);
void session_helo(struct session *s, const char *helo, int64_t now_ms);
/*
 * The MTA, from its {v} macro ("Postfix 3.7.11", Sendmail's "8.17.1.9"):
 * the enhanced code it answers its own data timeout with (Postfix 4.4.2,
 * Sendmail 4.4.1), "" when not known.
 */
void session_set_mta(struct session *s, const char *version);
void session_set_tls(struct session *s, const char *tls_version);
/*
 * {tls_version} at MAIL. A client may send STARTTLS and then MAIL without a
 * new EHLO (Postfix accepts it): its last HELO name was said before TLS,
 * so it moves to helo_before_tls and is no longer reported as current.
 */
void session_mail_tls(struct session *s, const char *tls_version);
void session_unknown(struct session *s);

/* Start a transaction; the previous one must have been ended. */
void txn_begin(struct session *s, const char *sender, const char *auth_user,
	       int64_t now_ms);
/*
 * A recipient. rejected_status is the enhanced status code when the MTA
 * rejected it ({rcpt_mailer} = error), else NULL; text is the reply text.
 */
void txn_rcpt(struct txn *t, const char *addr, const char *rejected_status,
	      const char *text, int64_t now_ms);
void txn_set_queue_id(struct txn *t, const char *queue_id);
void txn_data(struct txn *t, int64_t now_ms);
void txn_header(struct txn *t, const char *name, const char *value,
		const char *own_name, int64_t now_ms);
void txn_eoh(struct txn *t, int64_t now_ms);
void txn_body(struct txn *t, size_t len, int64_t now_ms);
void txn_mark(struct txn *t, enum phase phase, int64_t now_ms);
/* The transaction is over (at end_ms): the next MAIL starts from here. */
void txn_end(struct session *s, int64_t end_ms);

/* First content event (header, end of header, body or end of message); -1 if none. */
int64_t txn_first_content(const struct txn *t);
/* Upload time after 354: first content event minus DATA; -1 if unknown. */
int64_t txn_upload_ms(const struct txn *t);

const char *phase_name(enum phase phase);

#endif
