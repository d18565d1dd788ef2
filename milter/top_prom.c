/*
 * NAME
 *	top_prom - the few /metrics samples smtptrace-top reads
 * DESCRIPTION
 *	See top_prom.h. One line at a time, within len: name, optional
 *	{labels} (quoted values with \\, \" and \n escapes), a value
 *	(strtod on a bounded copy: "+Inf", "NaN" and exponents work), an
 *	optional timestamp. A line that does not read is skipped, as
 *	Prometheus would refuse it but smtptrace-top only needs some.
 */
#include "top_prom.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sample {
	const char *name;
	size_t      name_len;
	char        outcome[TOP_LABEL_MAX];	/* the labels we use, or "" */
	char        version[TOP_LABEL_MAX];
	char        le[TOP_LABEL_MAX];
	double      value;
};

static bool
name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* A quoted label value at p (after the '"'); copies into dst (cut); returns past it. */
static const char *
label_value(const char *p, const char *end, char *dst, size_t dstsize)
{
	size_t n = 0;

	for (; p < end && *p != '"'; p++) {
		char c = *p;
		if (c == '\\' && p + 1 < end) {
			c = *++p;
			if (c == 'n')
				c = '\n';
		}
		if (dst != NULL && n + 1 < dstsize)
			dst[n++] = c;
	}
	if (dst != NULL)
		dst[n] = '\0';
	return p < end ? p + 1 : NULL;
}

static char *
label_slot(struct sample *s, const char *key, size_t key_len)
{
	if (key_len == 7 && memcmp(key, "outcome", 7) == 0)
		return s->outcome;
	if (key_len == 7 && memcmp(key, "version", 7) == 0)
		return s->version;
	if (key_len == 2 && memcmp(key, "le", 2) == 0)
		return s->le;
	return NULL;
}

/* {a="x",b="y"} at p (after the '{'); returns past the '}', NULL if broken. */
static const char *
labels(const char *p, const char *end, struct sample *s)
{
	while (p < end && *p != '}') {
		const char *key = p;
		while (p < end && name_char(*p, p == key))
			p++;
		size_t key_len = (size_t)(p - key);
		if (key_len == 0 || p + 1 >= end || p[0] != '=' || p[1] != '"')
			return NULL;
		char *slot = label_slot(s, key, key_len);
		p = label_value(p + 2, end, slot, TOP_LABEL_MAX);
		if (p == NULL)
			return NULL;
		if (p < end && *p == ',')
			p++;
	}
	return p < end ? p + 1 : NULL;
}

static bool
read_line(const char *p, const char *end, struct sample *s)
{
	char num[64];

	memset(s, 0, sizeof *s);
	s->name = p;
	while (p < end && name_char(*p, p == s->name))
		p++;
	s->name_len = (size_t)(p - s->name);
	if (s->name_len == 0)
		return false;
	if (p < end && *p == '{' && (p = labels(p + 1, end, s)) == NULL)
		return false;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	size_t n = 0;
	while (p < end && *p != ' ' && *p != '\t' && n + 1 < sizeof num)
		num[n++] = *p++;
	num[n] = '\0';
	char *stop;
	s->value = strtod(num, &stop);
	return n > 0 && *stop == '\0';
}

static bool
is(const struct sample *s, const char *name)
{
	return strlen(name) == s->name_len && memcmp(s->name, name, s->name_len) == 0;
}

static void
add_bucket(struct top_metrics *m, const struct sample *s)
{
	char *stop = NULL;
	double le = strcmp(s->le, "+Inf") == 0 ? INFINITY : strtod(s->le, &stop);

	if (s->le[0] == '\0' || (stop != NULL && *stop != '\0') || isnan(le) ||
	    m->nbuckets == TOP_BUCKETS_MAX)
		return;
	size_t i = m->nbuckets;
	while (i > 0 && m->upload[i - 1].le > le) {	/* keep them sorted by le */
		m->upload[i] = m->upload[i - 1];
		i--;
	}
	m->upload[i] = (struct top_bucket){ .le = le, .count = s->value };
	m->nbuckets++;
}

static void
keep(struct top_metrics *m, const struct sample *s)
{
	if (is(s, "smtptrace_build_info") && s->version[0] != '\0')
		memcpy(m->version, s->version, sizeof m->version);
	else if (is(s, "smtptrace_connections_open"))
		m->open = s->value;
	else if (is(s, "smtptrace_transactions_in_data"))
		m->in_data = s->value;
	else if (is(s, "smtptrace_transactions_stalled"))
		m->stalled = s->value;
	else if (is(s, "smtptrace_upload_seconds_bucket"))
		add_bucket(m, s);
	else if (is(s, "smtptrace_transactions_total") && s->outcome[0] != '\0' &&
		 m->noutcomes < TOP_OUTCOMES_MAX) {
		struct top_outcome_total *o = &m->outcomes[m->noutcomes++];
		memcpy(o->name, s->outcome, sizeof o->name);
		o->total = s->value;
	}
}

int
top_metrics_parse(const char *text, size_t len, struct top_metrics *m, char *err,
		  size_t errsize)
{
	const char *p = text, *end = text + len;
	size_t ours = 0;

	memset(m, 0, sizeof *m);
	m->open = m->in_data = m->stalled = NAN;
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	if (p < end && *p == '<') {
		snprintf(err, errsize, "an HTML or XML page, not smtptrace's metrics");
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		struct sample s;
		if (*p != '#' && read_line(p, eol, &s) && s.name_len > 10 &&
		    memcmp(s.name, "smtptrace_", 10) == 0) {
			ours++;
			keep(m, &s);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (ours == 0) {
		snprintf(err, errsize, "no smtptrace_ metric in it: not smtptrace's metrics");
		return -1;
	}
	return 0;
}
