/*
 * NAME
 *	top_model - the milter's /transactions and /recent documents as structs
 * DESCRIPTION
 *	See top_model.h. Each struct is described once, as a table of
 *	{key, type, offset, required}; one reader fills any struct from its
 *	table, so a key is named in one place. The tokener has a depth cap;
 *	json-c does not check UTF-8 here on purpose: one client's odd HELO
 *	name must not make the whole document unreadable (top_str shows it
 *	safely).
 */
#include "top_model.h"

#include <json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top_str.h"

#define JSON_DEPTH	16
#define INT_MAX_KEPT	1000000000000000LL	/* 1e15: any sane count or ms */

enum field_type { F_STR, F_INT, F_NUM, F_BOOL };

struct field {
	const char     *key;
	enum field_type type;
	size_t          offset;
	bool            required;
};

#define S(t, k, m, r)	{ k, F_STR, offsetof(struct t, m), r }
#define I(t, k, m)	{ k, F_INT, offsetof(struct t, m), false }
#define N(t, k, m, r)	{ k, F_NUM, offsetof(struct t, m), r }
#define B(t, k, m)	{ k, F_BOOL, offsetof(struct t, m), false }

static const struct field txns_fields[] = {
	I(top_transactions, "now_ms", now_ms), I(top_transactions, "uptime_s", uptime_s),
	I(top_transactions, "stall_warn_after_s", stall_warn_after_s),
	I(top_transactions, "open", open), I(top_transactions, "in_data", in_data),
	I(top_transactions, "stalled", stalled), S(top_transactions, "version", version, false),
	B(top_transactions, "truncated", truncated),
};

static const struct field session_fields[] = {
	S(top_session, "session", session, true), S(top_session, "phase", phase, true),
	N(top_session, "seconds_in_phase", in_phase_s, true),
	N(top_session, "seconds_connected", connected_s, false),
	S(top_session, "client", client, false), S(top_session, "helo", helo, false),
	S(top_session, "from", from, false), S(top_session, "queue_id", queue_id, false),
	S(top_session, "tls", tls, false), I(top_session, "txn", txn),
	I(top_session, "rcpt", rcpt), I(top_session, "rcpt_rejected", rcpt_rejected),
	I(top_session, "warnings", warnings), B(top_session, "stalled", stalled),
};

static const struct field recent_fields[] = { I(top_recent, "size", size) };

static const struct field ending_fields[] = {
	S(top_ending, "outcome", outcome, true), S(top_ending, "session", session, false),
	S(top_ending, "queue_id", queue_id, false), S(top_ending, "client", client, false),
	S(top_ending, "helo", helo, false), S(top_ending, "from", from, false),
	S(top_ending, "reply", reply, false), S(top_ending, "end_time", end_time, false),
	I(top_ending, "txn", txn), I(top_ending, "upload_ms", upload_ms),
	I(top_ending, "duration_ms", duration_ms), I(top_ending, "ended_ms_ago", ended_ms_ago),
};

#define COUNT(a)	(sizeof (a) / sizeof (a)[0])

static const char *
type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: case json_type_int: return "a number";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

/* Numbers: NaN, negatives and absurd values are clamped, never trusted. */
static double
clamp_num(double v, double max)
{
	return isnan(v) || v < 0 ? 0 : v > max ? max : v;
}

static int
set_field(const struct field *f, json_object *v, char *base, char *err, size_t errsize,
	  const char *where)
{
	static const char *const want[] = { "a string", "a number", "a number", "a boolean" };
	json_type t = json_object_get_type(v);
	void *dst = base + f->offset;

	if (f->type == F_STR && t == json_type_string) {
		char *s = top_strndup(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v), TOP_STR_MAX);
		if (s == NULL) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		*(char **)dst = s;
	} else if (f->type == F_INT && (t == json_type_int || t == json_type_double)) {
		*(long long *)dst = (long long)clamp_num(json_object_get_double(v),
							 (double)INT_MAX_KEPT);
	} else if (f->type == F_NUM && (t == json_type_int || t == json_type_double)) {
		*(double *)dst = clamp_num(json_object_get_double(v), 1e12);
	} else if (f->type == F_BOOL && t == json_type_boolean) {
		*(bool *)dst = json_object_get_boolean(v);
	} else {
		snprintf(err, errsize, "%s%s is %s, want %s", where, f->key, type_name(v),
			 want[f->type]);
		return -1;
	}
	return 0;
}

/* Fills base from obj by the table; where prefixes messages ("recent[3]."). */
static int
read_fields(json_object *obj, const struct field *fields, size_t n, void *base,
	    char *err, size_t errsize, const char *where)
{
	for (size_t i = 0; i < n; i++) {
		json_object *v = NULL;
		if (!json_object_object_get_ex(obj, fields[i].key, &v) || v == NULL) {
			if (!fields[i].required)
				continue;
			snprintf(err, errsize, "no \"%s\" in %s", fields[i].key,
				 where[0] ? where : "the document");
			return -1;
		}
		if (set_field(&fields[i], v, base, err, errsize, where) < 0)
			return -1;
	}
	return 0;
}

static bool
only_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* The document's top object, or NULL with err saying why it is not one. */
static json_object *
parse_object(const char *body, size_t len, char *err, size_t errsize)
{
	size_t lead = 0;

	while (lead < len && only_space(body + lead, 1))
		lead++;
	if (lead == len) {
		snprintf(err, errsize, "an empty response, not smtptrace's JSON");
		return NULL;
	}
	if (body[lead] == '<') {
		snprintf(err, errsize, "an HTML or XML page, not smtptrace's JSON");
		return NULL;
	}
	if (len > INT32_MAX) {
		snprintf(err, errsize, "too large to parse");
		return NULL;
	}
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	if (tok == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (obj == NULL || jerr != json_tokener_success) {
		snprintf(err, errsize, "broken JSON: %s at byte %zu",
			 jerr == json_tokener_continue ? "it ends too early"
						       : json_tokener_error_desc(jerr), end);
		json_object_put(obj);
		return NULL;
	}
	if (end < len && !only_space(body + end, len - end)) {
		snprintf(err, errsize, "broken JSON: something after the document at byte %zu", end);
		json_object_put(obj);
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(err, errsize, "JSON, but %s, not smtptrace's object", type_name(obj));
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* The array under key, or NULL with err. */
static json_object *
get_array(json_object *obj, const char *key, char *err, size_t errsize)
{
	json_object *a = NULL;

	if (!json_object_object_get_ex(obj, key, &a) || a == NULL) {
		snprintf(err, errsize, "JSON without \"%s\": not smtptrace's", key);
		return NULL;
	}
	if (!json_object_is_type(a, json_type_array)) {
		snprintf(err, errsize, "\"%s\" is %s, want an array", key, type_name(a));
		return NULL;
	}
	return a;
}

/* Reads each element of a into rows[] (elem bytes each) by fields. */
static int
read_rows(json_object *a, const char *key, const struct field *fields, size_t nfields,
	  void *rows, size_t elem, size_t n, void (*init)(void *), char *err, size_t errsize)
{
	char where[64];

	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(a, i);
		char *base = (char *)rows + i * elem;
		init(base);
		if (snprintf(where, sizeof where, "%s[%zu].", key, i) >= (int)sizeof where)
			where[0] = '\0';
		if (!json_object_is_type(row, json_type_object)) {
			snprintf(err, errsize, "%s[%zu] is %s, want an object", key, i,
				 type_name(row));
			return -1;
		}
		if (read_fields(row, fields, nfields, base, err, errsize, where) < 0)
			return -1;
	}
	return 0;
}

static void
session_init(void *p)
{
	struct top_session *s = p;

	memset(s, 0, sizeof *s);
	s->txn = s->rcpt = s->rcpt_rejected = s->warnings = -1;
	s->connected_s = -1;
}

static void
ending_init(void *p)
{
	struct top_ending *e = p;

	memset(e, 0, sizeof *e);
	e->txn = e->upload_ms = e->duration_ms = e->ended_ms_ago = -1;
}

int
top_transactions_parse(const char *body, size_t len, struct top_transactions *t,
		       char *err, size_t errsize)
{
	json_object *obj = parse_object(body, len, err, errsize), *a;
	int rc = -1;

	memset(t, 0, sizeof *t);
	t->now_ms = t->uptime_s = t->stall_warn_after_s = -1;
	t->open = t->in_data = t->stalled = -1;
	if (obj == NULL || (a = get_array(obj, "transactions", err, errsize)) == NULL ||
	    read_fields(obj, txns_fields, COUNT(txns_fields), t, err, errsize, "") < 0)
		goto out;
	size_t n = json_object_array_length(a);
	if (n > TOP_ROWS_MAX) {
		n = TOP_ROWS_MAX;
		t->truncated = true;
	}
	if (n > 0 && (t->rows = calloc(n, sizeof *t->rows)) == NULL) {
		snprintf(err, errsize, "out of memory");
		goto out;
	}
	t->n = n;
	rc = read_rows(a, "transactions", session_fields, COUNT(session_fields), t->rows,
		       sizeof *t->rows, n, session_init, err, errsize);
out:
	json_object_put(obj);
	if (rc < 0)
		top_transactions_free(t);
	return rc;
}

int
top_recent_parse(const char *body, size_t len, struct top_recent *r, char *err,
		 size_t errsize)
{
	json_object *obj = parse_object(body, len, err, errsize), *a;
	int rc = -1;

	memset(r, 0, sizeof *r);
	r->size = -1;
	if (obj == NULL || (a = get_array(obj, "recent", err, errsize)) == NULL ||
	    read_fields(obj, recent_fields, COUNT(recent_fields), r, err, errsize, "") < 0)
		goto out;
	size_t n = json_object_array_length(a);
	if (n > TOP_ROWS_MAX)
		n = TOP_ROWS_MAX;
	if (n > 0 && (r->rows = calloc(n, sizeof *r->rows)) == NULL) {
		snprintf(err, errsize, "out of memory");
		goto out;
	}
	r->n = n;
	rc = read_rows(a, "recent", ending_fields, COUNT(ending_fields), r->rows,
		       sizeof *r->rows, n, ending_init, err, errsize);
out:
	json_object_put(obj);
	if (rc < 0)
		top_recent_free(r);
	return rc;
}

void
top_transactions_free(struct top_transactions *t)
{
	for (size_t i = 0; t->rows != NULL && i < t->n; i++) {
		struct top_session *s = &t->rows[i];
		free(s->session), free(s->client), free(s->helo), free(s->from);
		free(s->phase), free(s->queue_id), free(s->tls);
	}
	free(t->rows);
	free(t->version);
	t->rows = NULL;
	t->version = NULL;
	t->n = 0;
}

void
top_recent_free(struct top_recent *r)
{
	for (size_t i = 0; r->rows != NULL && i < r->n; i++) {
		struct top_ending *e = &r->rows[i];
		free(e->session), free(e->queue_id), free(e->client), free(e->helo);
		free(e->from), free(e->outcome), free(e->reply), free(e->end_time);
	}
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
}
