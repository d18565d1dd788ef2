/*
 * NAME
 *	session - per-connection and per-transaction state of one SMTP session
 * DESCRIPTION
 *	See session.h. Pure state keeping; the caller supplies all times.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "escape.h"

static const char *const phase_names[PHASE__COUNT] = {
	[PHASE_CONNECT] = "connect",
	[PHASE_HELO] = "helo",
	[PHASE_MAIL] = "mail",
	[PHASE_RCPT] = "rcpt",
	[PHASE_DATA] = "data",
	[PHASE_HEADER] = "header",
	[PHASE_EOH] = "eoh",
	[PHASE_BODY] = "body",
	[PHASE_EOM] = "eom",
	[PHASE_ABORT] = "abort",
	[PHASE_CLOSE] = "close",
};

const char *
phase_name(enum phase phase)
{
	return (unsigned)phase < PHASE__COUNT ? phase_names[phase] : "?";
}

static void
txn_reset(struct txn *t, unsigned seq)
{
	memset(t, 0, sizeof *t);
	t->seq = seq;
	for (int i = 0; i < PHASE__COUNT; i++)
		t->at[i] = -1;
}

struct session *
session_create(const char *id, int64_t now_ms)
{
	struct session *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	text_copy(s->id, sizeof s->id, id);
	s->connect_at = now_ms;
	s->helo_at = -1;
	s->last_txn_end = -1;
	s->timeout_enhanced = "";
	txn_reset(&s->txn, 0);
	return s;
}

void
session_free(struct session *s)
{
	free(s);
}

void
session_connect(struct session *s, const char *client_name,
		const char *client_addr, unsigned client_port, int64_t now_ms)
{
	s->connected = true;
	s->connect_at = now_ms;
	text_copy(s->client_name, sizeof s->client_name, client_name);
	text_copy(s->client_addr, sizeof s->client_addr, client_addr);
	s->client_port = client_port;
}

void
session_set_mta(struct session *s, const char *version)
{
	if (version == NULL)
		s->timeout_enhanced = "";
	else if (strncmp(version, "Postfix", 7) == 0)
		s->timeout_enhanced = "4.4.2";
	else if (version[0] >= '0' && version[0] <= '9')
		s->timeout_enhanced = "4.4.1";	/* Sendmail: its version alone */
	else
		s->timeout_enhanced = "";
}

void
session_helo(struct session *s, const char *helo, int64_t now_ms)
{
	text_copy(s->helo, sizeof s->helo, helo);
	s->helo_before_tls[0] = '\0';
	s->helo_count++;
	s->helo_at = now_ms;
}

void
session_set_tls(struct session *s, const char *tls_version)
{
	if (tls_version != NULL && *tls_version != '\0')
		text_copy(s->tls_version, sizeof s->tls_version, tls_version);
}

void
session_mail_tls(struct session *s, const char *tls_version)
{
	if (tls_version == NULL || *tls_version == '\0' || s->tls_version[0] != '\0')
		return;
	if (s->helo[0] != '\0') {
		text_copy(s->helo_before_tls, sizeof s->helo_before_tls, s->helo);
		s->helo[0] = '\0';
	}
	text_copy(s->tls_version, sizeof s->tls_version, tls_version);
}

void
session_unknown(struct session *s)
{
	s->unknown_cmds++;
}

void
txn_begin(struct session *s, const char *sender, const char *auth_user,
	  int64_t now_ms)
{
	s->txn_count++;
	txn_reset(&s->txn, s->txn_count);
	s->txn.active = true;
	s->txn.at[PHASE_CONNECT] = s->connect_at;
	s->txn.at[PHASE_HELO] = s->helo_at;
	s->txn.at[PHASE_MAIL] = now_ms;
	text_copy(s->txn.sender, sizeof s->txn.sender, sender);
	if (auth_user != NULL && *auth_user != '\0')
		text_copy(s->auth_user, sizeof s->auth_user, auth_user);
}

void
txn_mark(struct txn *t, enum phase phase, int64_t now_ms)
{
	if ((unsigned)phase < PHASE__COUNT && t->at[phase] < 0)
		t->at[phase] = now_ms;
}

void
txn_rcpt(struct txn *t, const char *addr, const char *rejected_status,
	 const char *text, int64_t now_ms)
{
	txn_mark(t, PHASE_RCPT, now_ms);
	if (rejected_status == NULL) {
		t->rcpt_accepted++;
		return;
	}
	t->rcpt_rejected++;
	if (t->rejects_kept >= SESSION_REJECTS_KEPT)
		return;
	struct rejected_rcpt *r = &t->rejects[t->rejects_kept++];
	text_copy(r->addr, sizeof r->addr, addr);
	text_copy(r->status, sizeof r->status, rejected_status);
	text_copy(r->text, sizeof r->text, text);
}

void
txn_set_queue_id(struct txn *t, const char *queue_id)
{
	if (queue_id != NULL && *queue_id != '\0')
		text_copy(t->queue_id, sizeof t->queue_id, queue_id);
}

void
txn_data(struct txn *t, int64_t now_ms)
{
	txn_mark(t, PHASE_DATA, now_ms);
}

void
txn_header(struct txn *t, const char *name, const char *value,
	   const char *own_name, int64_t now_ms)
{
	txn_mark(t, PHASE_HEADER, now_ms);
	t->headers++;
	/* name ": " value CRLF, as the header stands in the message */
	t->header_bytes += (name ? strlen(name) : 0) + 2
		+ (value ? strlen(value) : 0) + 2;
	if (name != NULL && own_name != NULL && strcasecmp(name, own_name) == 0)
		t->own_headers++;
}

void
txn_eoh(struct txn *t, int64_t now_ms)
{
	txn_mark(t, PHASE_EOH, now_ms);
}

void
txn_body(struct txn *t, size_t len, int64_t now_ms)
{
	txn_mark(t, PHASE_BODY, now_ms);
	t->body_bytes += len;
}

void
txn_end(struct session *s, int64_t end_ms)
{
	s->txn.active = false;
	s->last_txn_end = end_ms;
}

int64_t
txn_first_content(const struct txn *t)
{
	static const enum phase content[] = {
		PHASE_HEADER, PHASE_EOH, PHASE_BODY, PHASE_EOM
	};
	int64_t first = -1;

	for (size_t i = 0; i < sizeof content / sizeof content[0]; i++) {
		int64_t at = t->at[content[i]];
		if (at >= 0 && (first < 0 || at < first))
			first = at;
	}
	return first;
}

int64_t
txn_upload_ms(const struct txn *t)
{
	int64_t first = txn_first_content(t);

	if (t->at[PHASE_DATA] < 0 || first < 0)
		return -1;
	return first - t->at[PHASE_DATA];
}
