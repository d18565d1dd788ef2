/*
 * NAME
 *	record - the fields one log line or one header reports
 * DESCRIPTION
 *	See record.h. The order of the fields here is the order in the log
 *	line and the header; README.md documents each one.
 */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "codes.h"
#include "escape.h"
#include "sbuf.h"

static void
add_text(struct record *r, const char *key, const char *text, unsigned flags)
{
	if (r->nfields >= RECORD_FIELDS_MAX || text == NULL)
		return;
	r->fields[r->nfields++] = (struct field){
		.key = key, .kind = FIELD_TEXT, .flags = flags, .text = text,
	};
}

static void
add_num(struct record *r, const char *key, int64_t num, unsigned flags)
{
	if (r->nfields >= RECORD_FIELDS_MAX)
		return;
	r->fields[r->nfields++] = (struct field){
		.key = key, .kind = FIELD_NUM, .flags = flags, .num = num,
	};
}

static void
add_timeline(struct record *r)
{
	if (r->nfields >= RECORD_FIELDS_MAX)
		return;
	r->fields[r->nfields++] = (struct field){
		.key = "timeline", .kind = FIELD_TIMELINE,
	};
}

/* The address and port are kept whole; a name too long for the rest is cut. */
void
record_client(const struct session *s, char *buf, size_t size)
{
	char where[SESSION_ADDR_MAX + 16], name[SESSION_NAME_MAX];
	const char *n = s->client_name;
	struct sbuf sb;

	/* libmilter passes "[addr]" when the MTA has no name for the client */
	if (n[0] == '\0' || n[0] == '[')
		n = "unknown";
	sbuf_init(&sb, where, sizeof where);
	sbuf_printf(&sb, "[%s]", s->client_addr[0] ? s->client_addr : "unknown");
	if (s->client_port != 0)
		sbuf_printf(&sb, ":%u", s->client_port);
	size_t room = size > sb.len + 1 ? size - sb.len : 1;
	text_copy(name, room < sizeof name ? room : sizeof name, n);
	sbuf_init(&sb, buf, size);
	sbuf_printf(&sb, "%s%s", name, where);
}

/* The current HELO name, or the one said before TLS began (never as current). */
static void
add_helo(struct record *r, const struct session *s)
{
	if (s->helo_count > 0 && s->helo[0] != '\0')
		add_text(r, "helo", s->helo, 0);
	else if (s->helo_before_tls[0] != '\0')
		add_text(r, "helo_before_tls", s->helo_before_tls, 0);
}

static void
format_client(struct record *r, const struct session *s)
{
	record_client(s, r->client, sizeof r->client);
}

static void
format_rejects(struct record *r, const struct txn *t)
{
	struct sbuf sb;

	sbuf_init(&sb, r->rejects, sizeof r->rejects);
	for (unsigned i = 0; i < t->rejects_kept; i++) {
		const struct rejected_rcpt *rj = &t->rejects[i];
		sbuf_printf(&sb, "%s%s %s%s%s", i ? "; " : "", rj->addr,
			    rj->status, rj->text[0] ? " " : "", rj->text);
	}
	if (t->rcpt_rejected > t->rejects_kept)
		sbuf_printf(&sb, "; +%u more", t->rcpt_rejected - t->rejects_kept);
}

/* The knowledge base's words for each distinct enhanced code of the rejects. */
static void
explain_rejects(struct record *r, const struct txn *t)
{
	struct sbuf sb;

	sbuf_init(&sb, r->rejects_explain, sizeof r->rejects_explain);
	for (unsigned i = 0; i < t->rejects_kept; i++) {
		const char *status = t->rejects[i].status;
		struct explanation ex;
		bool seen = false;

		for (unsigned j = 0; j < i && !seen; j++)
			seen = strcmp(t->rejects[j].status, status) == 0;
		if (seen || (!codes_explain(-1, status, &ex) && ex.enhanced[0] == '\0'))
			continue;
		if (sb.len > 0)
			sbuf_puts(&sb, " | ");
		codes_summary(&ex, &sb);
	}
}

/* The implied reply ("421 4.4.2", "5xx 5.7.1") explained. */
static void
explain_reply(struct record *r, const struct implied_reply *ir)
{
	struct explanation ex;
	struct sbuf sb;

	sbuf_init(&sb, r->reply_explain, sizeof r->reply_explain);
	codes_explain(ir->code > 0 ? ir->code : -1, ir->enhanced, &ex);
	codes_summary(&ex, &sb);
}

static void
build_timeline(struct record *r, const struct txn *t, int64_t connect_at)
{
	r->ntimeline = 0;
	for (int p = 0; p < PHASE__COUNT; p++) {
		if (t->at[p] < 0)
			continue;
		r->timeline[r->ntimeline++] = (struct timeline_item){
			.name = phase_name((enum phase)p),
			.ms = t->at[p] - connect_at,
		};
	}
}

static void
record_reset(struct record *r)
{
	r->queue_id = NULL;
	r->nfields = 0;
	r->ntimeline = 0;
	r->client[0] = r->reply[0] = r->rejects[0] = '\0';
	r->reply_explain[0] = r->rejects_explain[0] = '\0';
}

void
record_txn(struct record *r, const struct session *s, enum outcome o,
	   int64_t end_ms)
{
	const struct txn *t = &s->txn;
	struct implied_reply ir;
	struct sbuf sb;

	record_reset(r);
	if (t->queue_id[0] != '\0')
		r->queue_id = t->queue_id;
	format_client(r, s);
	build_timeline(r, t, s->connect_at);

	add_text(r, "kind", "txn", FIELD_LOG_ONLY);
	add_text(r, "session", s->id, 0);
	add_num(r, "txn", t->seq, 0);
	if (r->queue_id != NULL)
		add_text(r, "queue_id", r->queue_id, FIELD_HEADER_ONLY);
	add_text(r, "client", r->client, 0);
	add_helo(r, s);
	if (s->tls_version[0] != '\0')
		add_text(r, "tls", s->tls_version, 0);
	if (s->auth_user[0] != '\0')
		add_text(r, "auth", s->auth_user, FIELD_LOG_ONLY);
	add_text(r, "from", t->sender, 0);
	add_num(r, "rcpt", t->rcpt_accepted, 0);
	add_num(r, "rcpt_rejected", t->rcpt_rejected, 0);
	if (t->rcpt_rejected > 0) {
		format_rejects(r, t);
		add_text(r, "rejects", r->rejects, 0);
		explain_rejects(r, t);
		if (r->rejects_explain[0] != '\0')
			add_text(r, "rejects_explain", r->rejects_explain, FIELD_EXPLAIN);
	}
	add_text(r, "outcome", outcome_name(o), 0);
	outcome_reply(o, t, &ir);
	/* the enhanced code of a data timeout is the MTA's own */
	if (o == OUTCOME_TIMEOUT_AFTER_354 && s->timeout_enhanced != NULL)
		text_copy(ir.enhanced, sizeof ir.enhanced, s->timeout_enhanced);
	if (!implied_reply_empty(&ir)) {
		sbuf_init(&sb, r->reply, sizeof r->reply);
		implied_reply_format(&ir, &sb);
		add_text(r, "reply", r->reply, FIELD_LOG_ONLY);
		explain_reply(r, &ir);
		add_text(r, "reply_explain", r->reply_explain, FIELD_EXPLAIN);
	}
	add_timeline(r);
	int64_t upload = txn_upload_ms(t);
	if (upload >= 0)
		add_num(r, "upload_ms", upload, 0);
	else if (t->at[PHASE_DATA] >= 0)
		add_num(r, "in_data_ms", end_ms - t->at[PHASE_DATA], 0);
	if (txn_first_content(t) >= 0) {
		add_num(r, "headers", t->headers, 0);
		add_num(r, "header_bytes", (int64_t)t->header_bytes, 0);
		add_num(r, "body_bytes", (int64_t)t->body_bytes, 0);
	}
	if (t->at[PHASE_MAIL] >= 0)
		add_num(r, "duration_ms", end_ms - t->at[PHASE_MAIL], 0);
	if (t->stall_warnings > 0) {
		add_text(r, "stalled", "yes", 0);
		add_num(r, "stall_warnings", t->stall_warnings, 0);
	}
	add_text(r, "explain", outcome_explain(o), FIELD_EXPLAIN);
}

void
record_conn(struct record *r, const struct session *s, int64_t now_ms)
{
	record_reset(r);
	format_client(r, s);
	add_text(r, "kind", "conn", FIELD_LOG_ONLY);
	add_text(r, "session", s->id, 0);
	add_text(r, "client", r->client, 0);
	add_helo(r, s);
	add_num(r, "helo_count", s->helo_count, 0);
	if (s->tls_version[0] != '\0')
		add_text(r, "tls", s->tls_version, 0);
	if (s->auth_user[0] != '\0')
		add_text(r, "auth", s->auth_user, FIELD_LOG_ONLY);
	add_num(r, "txns", s->txn_count, 0);
	add_num(r, "unknown_cmds", s->unknown_cmds, 0);
	add_num(r, "duration_ms", now_ms - s->connect_at, 0);
}

void
record_stall(struct record *r, const struct stall_view *v)
{
	record_reset(r);
	if (v->queue_id[0] != '\0')
		r->queue_id = v->queue_id;
	add_text(r, "kind", "stall", FIELD_LOG_ONLY);
	add_text(r, "session", v->session, 0);
	add_num(r, "txn", v->txn, 0);
	add_text(r, "client", v->client, 0);
	if (v->helo[0] != '\0')
		add_text(r, "helo", v->helo, 0);
	add_text(r, "from", v->sender, 0);
	add_num(r, "rcpt", v->rcpt, 0);
	add_num(r, "in_data_ms", v->in_data_ms, 0);
	add_num(r, "warning", v->warnings, 0);
	add_text(r, "explain", "the client got 354 and smtptrace has seen no content "
		 "since (in_data_ms): most likely the upload is stalled or very slow, and "
		 "the MTA will give up at its data timeout (421); rarely, the MTA "
		 "refused the message after its final dot and the client has not sent "
		 "its next command yet (the milter hears of that only then)", 0);
}

const struct field *
record_get(const struct record *r, const char *key)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (strcmp(r->fields[i].key, key) == 0)
			return &r->fields[i];
	return NULL;
}
