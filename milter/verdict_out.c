/*
 * NAME
 *	verdict_out - one verdict as a key=value line or a JSON object
 * DESCRIPTION
 *	See verdict.h (verdict_out_init, verdict_format). The explanation of
 *	each outcome and code is made once and kept (the memo in struct
 *	verdict_out). Pure: no I/O.
 */
#include "verdict.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codes.h"
#include "escape.h"

/* The outcome's sentence, and the knowledge base's words for the code. */
static void
explain_text(const struct verdict *v, struct sbuf *sb)
{
	struct explanation ex;

	if (v->outcome_id >= 0) {
		enum outcome o = (enum outcome)v->outcome_id;
		if (v->resolved)
			sbuf_puts(sb, outcome_verdict_text(o));
		else
			sbuf_printf(sb, "no MTA line settled it; smtptrace saw: %s",
				    outcome_explain(o));
	}
	if (v->code <= 0 && v->enhanced[0] == '\0')
		return;
	codes_explain(v->code > 0 ? v->code : -1, v->enhanced, &ex);
	if (sb->len > 0)
		sbuf_puts(sb, ". ");
	codes_summary(&ex, sb);
}

struct out {
	struct sbuf *sb;
	bool         json;
	bool         first;
};

/* (No printf for the keys and numbers: a dozen a line, a million lines.) */
static void
put_key(struct out *o, const char *key)
{
	if (o->json) {
		sbuf_putc(o->sb, o->first ? '{' : ',');
		sbuf_putc(o->sb, '"');
		sbuf_puts(o->sb, key);
		sbuf_puts(o->sb, "\":");
	} else {
		if (!o->first)
			sbuf_putc(o->sb, ' ');
		sbuf_puts(o->sb, key);
		sbuf_putc(o->sb, '=');
	}
	o->first = false;
}

/* A text value; "" is left out (key=value) or null (JSON). */
static void
put_text(struct out *o, const char *key, const char *value, size_t max)
{
	if (value[0] == '\0' && !o->json)
		return;
	put_key(o, key);
	if (value[0] == '\0')
		sbuf_puts(o->sb, "null");
	else
		(o->json ? escape_json : escape_kv)(o->sb, value, max);
}

/* A number; negative is left out (key=value) or null (JSON). */
static void
put_num(struct out *o, const char *key, long long n)
{
	if (n < 0 && !o->json)
		return;
	put_key(o, key);
	if (n < 0) {
		sbuf_puts(o->sb, "null");
		return;
	}
	char digits[24];
	size_t i = sizeof digits;
	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) != 0 && i > 0);
	sbuf_putn(o->sb, digits + i, sizeof digits - i);
}

static void
put_yes(struct out *o, const char *key, bool yes, bool always)
{
	if (!yes && !always && !o->json)
		return;
	put_key(o, key);
	sbuf_puts(o->sb, o->json ? (yes ? "true" : "false") : (yes ? "yes" : "no"));
}

/* key=value: delivery=sent dsn=2.0.0 relay=..; JSON: "delivery":{...}. */
static void
put_delivery(struct out *o, const struct verdict *v)
{
	if (!o->json) {
		put_text(o, "delivery", v->status, 16);
		put_text(o, "dsn", v->dsn, 16);
		put_text(o, "relay", v->relay, 128);
		return;
	}
	put_key(o, "delivery");
	if (v->status[0] == '\0') {
		sbuf_puts(o->sb, "null");
		return;
	}
	struct out in = { o->sb, true, true };
	put_text(&in, "status", v->status, 16);
	put_text(&in, "dsn", v->dsn, 16);
	put_text(&in, "relay", v->relay, 128);
	sbuf_putc(o->sb, '}');
}

void
verdict_out_init(struct verdict_out *vo, bool json)
{
	memset(vo, 0, sizeof *vo);
	vo->json = json;
	for (size_t i = 0; i < VERDICT_MEMO; i++)
		vo->memo[i].outcome_id = -2;	/* empty */
}

/*
 * The explanation, escaped, from the memo: it depends only on the
 * outcome, resolved and the codes, and composing it (the knowledge base,
 * printf) costs more than the rest of the line.
 */
static void
put_explain(struct out *o, const struct verdict *v, struct verdict_out *vo)
{
	struct verdict_memo *m = &vo->memo[0];
	char explain[4096];
	struct sbuf esb;

	for (size_t i = 0; i < VERDICT_MEMO; i++, m++)
		if (m->outcome_id == v->outcome_id && m->resolved == v->resolved &&
		    m->code == v->code && strcmp(m->enhanced, v->enhanced) == 0) {
			put_key(o, "explain");
			sbuf_putn(o->sb, m->text, m->len);
			return;
		}
	sbuf_init(&esb, explain, sizeof explain);
	explain_text(v, &esb);
	put_key(o, "explain");
	size_t start = o->sb->len;
	(o->json ? escape_json : escape_kv)(o->sb, explain, sizeof explain);
	size_t len = o->sb->len - start;
	if (o->sb->overflow || len >= sizeof m->text || strlen(v->enhanced) >= sizeof m->enhanced)
		return;
	m = &vo->memo[vo->next++ % VERDICT_MEMO];
	m->outcome_id = v->outcome_id;
	m->resolved = v->resolved;
	m->code = v->code;
	text_copy(m->enhanced, sizeof m->enhanced, v->enhanced);
	memcpy(m->text, o->sb->buf + start, len);
	m->len = len;
}

void
verdict_format(const struct verdict *v, struct verdict_out *vo, struct sbuf *sb)
{
	const struct maillog_txn *m = v->txn;
	struct out o = { sb, vo->json, true };

	if (vo->json || v->queue_id[0] != '\0')
		put_text(&o, "queue_id", v->queue_id, MAILLOG_QID_MAX);
	else
		put_text(&o, "queue_id", "NOQUEUE", 8);
	put_text(&o, "session", m->session, MAILLOG_SESSION_MAX);
	put_num(&o, "txn", m->txn);
	put_text(&o, "client", m->client, MAILLOG_CLIENT_MAX);
	put_text(&o, "from", m->from, MAILLOG_FROM_MAX);
	put_text(&o, "outcome", v->outcome, MAILLOG_NAME_MAX);
	put_text(&o, "milter_outcome", m->outcome_name, MAILLOG_NAME_MAX);
	put_yes(&o, "resolved", v->resolved, true);
	put_num(&o, "code", v->code);
	put_text(&o, "enhanced", v->enhanced, MAILLOG_ENHANCED_MAX);
	put_text(&o, "reply", v->reply, MAILLOG_REPLY_TEXT_MAX);
	put_num(&o, "bytes", v->bytes);
	put_num(&o, "upload_ms", m->upload_ms);
	put_num(&o, "in_data_ms", m->in_data_ms);
	put_yes(&o, "stalled", m->stalled, false);
	put_delivery(&o, v);
	put_text(&o, "evidence", v->by_milter ? "milter" : v->evidence,
		 VERDICT_EVIDENCE_MAX);
	put_explain(&o, v, vo);
	sbuf_puts(sb, vo->json ? "}\n" : "\n");
}

