/*
 * NAME
 *	formats - strict readers of key=value lines, JSON and the header
 * DESCRIPTION
 *	See formats.h. Decoded text goes to one buffer per document, sized
 *	up front (a decoded value is never longer than its source), so the
 *	pointers handed out stay valid until fmt_free.
 */
#include "formats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH_MAX	32
#define HEADER_LINE_MAX	998

static void
store_init(struct fmt_doc *d, size_t len)
{
	memset(d, 0, sizeof *d);
	/* the decoded text, the unfolded header, and a NUL per value */
	d->store_cap = 2 * len + 4 * FMT_FIELDS_MAX + 16;
	d->store = malloc(d->store_cap);
	if (d->store == NULL)
		abort();
}

static char *
store_begin(struct fmt_doc *d)
{
	return d->store + d->store_len;
}

static void
store_end(struct fmt_doc *d, size_t n)
{
	if (d->store_len + n + 1 > d->store_cap)
		abort();	/* a reader wrote more than its source: a bug here */
	d->store[d->store_len + n] = '\0';
	d->store_len += n + 1;
}

static char *
store_copy(struct fmt_doc *d, const char *s, size_t n)
{
	char *out = store_begin(d);

	memcpy(out, s, n);
	store_end(d, n);
	return out;
}

void
fmt_free(struct fmt_doc *d)
{
	free(d->store);
	d->store = NULL;
}

const struct fmt_field *
fmt_get(const struct fmt_doc *d, const char *key)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->f[i].key, key) == 0)
			return &d->f[i];
	return NULL;
}

static const char *
fail(struct fmt_doc *d, size_t at, const char *what)
{
	if (d != NULL)
		d->err_at = at;
	return what;
}

static bool
is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int
hex_lower(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The quoted form escape.c shares between the log and the header, at s
 * (s[0] is '"'): \" \\ \r \n \t \xHH, other bytes printable ASCII.
 * Decoded bytes to out; returns the bytes read, 0 on error.
 */
static size_t
c_unquote(const char *s, size_t len, char *out, size_t *out_len, const char **err)
{
	size_t i = 1, n = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"') {
			*out_len = n;
			return i + 1;
		}
		if (c < 0x20 || c >= 0x7f) {
			*err = "raw control or 8-bit byte inside a quoted value";
			return 0;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		switch (s[i + 1]) {
		case '"':  out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case 'r':  out[n++] = '\r'; break;
		case 'n':  out[n++] = '\n'; break;
		case 't':  out[n++] = '\t'; break;
		case 'x':
			if (i + 3 >= len || hex_lower(s[i + 2]) < 0 || hex_lower(s[i + 3]) < 0) {
				*err = "\\x not followed by two lower-case hex digits";
				return 0;
			}
			out[n++] = (char)(hex_lower(s[i + 2]) << 4 | hex_lower(s[i + 3]));
			i += 2;
			break;
		default:
			*err = "an escape the contract does not name";
			return 0;
		}
		i += 2;
	}
	*err = "unterminated quoted value";
	return 0;
}

/* ---- key=value ----------------------------------------------------------- */

static bool
kv_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

/* One value of a log line (escape_kv's contract); returns the bytes read, 0 on error. */
static size_t
kv_value_decode(const char *s, size_t len, char *out, size_t *out_len,
		bool *quoted, const char **err)
{
	size_t i = 0;

	*quoted = len > 0 && s[0] == '"';
	if (*quoted)
		return c_unquote(s, len, out, out_len, err);
	for (; i < len && s[i] != ' '; i++) {
		if (!kv_bare((unsigned char)s[i])) {
			*err = "a byte a bare value must not hold";
			return 0;
		}
		out[i] = s[i];
	}
	if (i == 0)
		*err = "empty bare value";
	*out_len = i;
	return i;
}

const char *
fmt_kv_value(const char *s, size_t len, char *out, size_t *out_len)
{
	const char *err = NULL;
	bool quoted;
	size_t used = kv_value_decode(s, len, out, out_len, &quoted, &err);

	if (used == 0)
		return err;
	return used == len ? NULL : "bytes after the value";
}

static const char *
kv_lead(const char *line, size_t len, struct fmt_doc *d, size_t *at)
{
	const char *err = NULL;
	char *out = store_begin(d);
	size_t n, i;

	if (len > 0 && line[0] == '"') {
		i = c_unquote(line, len, out, &n, &err);
		if (i == 0)
			return fail(d, 0, err);
		d->lead_quoted = true;
	} else {
		size_t end = 0;
		while (end < len && line[end] != ' ')
			end++;
		if (end < 2 || line[end - 1] != ':')
			return fail(d, end, "the line does not start with a token and ':'");
		i = end - 1;
		for (size_t k = 0; k < i; k++)
			if (!kv_bare((unsigned char)line[k]))
				return fail(d, k, "a byte a bare queue id must not hold");
		memcpy(out, line, i);
		n = i;
	}
	d->lead = out;
	d->lead_len = n;
	store_end(d, n);
	if (i >= len || line[i] != ':')
		return fail(d, i, "no ':' after the queue id");
	*at = i + 1;
	return NULL;
}

const char *
kv_parse(const char *line, size_t len, struct fmt_doc *d)
{
	const char *err = NULL;
	size_t i;

	store_init(d, len);
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			return fail(d, i, "a byte that is not printable ASCII");
	if ((err = kv_lead(line, len, d, &i)) != NULL)
		return err;
	while (i < len) {
		if (line[i] != ' ')
			return fail(d, i, "fields must be separated by one space");
		size_t k = ++i;
		while (k < len && is_key_char(line[k]))
			k++;
		if (k == i || k >= len || line[k] != '=')
			return fail(d, i, "not key=");
		if (d->n >= FMT_FIELDS_MAX)
			return fail(d, i, "too many fields");
		struct fmt_field *f = &d->f[d->n++];
		f->key = store_copy(d, line + i, k - i);
		f->key_len = k - i;
		i = k + 1;
		f->val = store_begin(d);
		size_t used = kv_value_decode(line + i, len - i, f->val, &f->val_len,
					      &f->quoted, &err);
		if (used == 0)
			return fail(d, i, err);
		store_end(d, f->val_len);
		f->raw = line + i;
		f->raw_len = used;
		i += used;
		if (i < len && line[i] != ' ')
			return fail(d, i, "a value runs into the next field");
	}
	return NULL;
}

/* ---- JSON ------------------------------------------------------------------ */

struct jp {
	const char     *s;
	size_t          len, i;
	int             depth;
	struct fmt_doc *d;
	const char     *err;
};

static bool
jfail(struct jp *p, const char *what)
{
	if (p->err == NULL) {
		p->err = what;
		if (p->d != NULL)
			p->d->err_at = p->i;
	}
	return false;
}

static void
jws(struct jp *p)
{
	while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
				 p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int
hex_any(char c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return hex_lower(c);
}

static bool
jhex4(struct jp *p, uint32_t *cp)
{
	*cp = 0;
	if (p->i + 4 > p->len)
		return jfail(p, "short \\u escape");
	for (int k = 0; k < 4; k++) {
		int h = hex_any(p->s[p->i + (size_t)k]);
		if (h < 0)
			return jfail(p, "\\u not followed by 4 hex digits");
		*cp = *cp << 4 | (uint32_t)h;
	}
	p->i += 4;
	return true;
}

static size_t
utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The bytes a \uXXXX escape stands for, by escape_json's contract: well-
 * formed UTF-8 passes through raw, so \u0000-\u00ff names one raw input
 * byte (a control byte, or a byte >= 0x80 that was not part of UTF-8);
 * anything higher is that code point, in UTF-8.
 */
static size_t
json_string_decode(uint32_t cp, char *out)
{
	if (cp < 0x100) {
		out[0] = (char)cp;
		return 1;
	}
	return utf8_put(cp, out);
}

/* Length of a valid UTF-8 sequence at s (RFC 3629: no overlong, no surrogate), or 0. */
size_t
utf8_valid(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp, min;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2; cp = s[0] & 0x1f; min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3; cp = s[0] & 0x0f; min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4; cp = s[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool
jescape(struct jp *p, char *out, size_t *n)
{
	static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	char e = p->s[p->i];
	uint32_t cp, lo;

	for (size_t k = 0; k + 1 < sizeof simple; k += 2) {
		if (e == simple[k]) {
			if (out != NULL)
				out[*n] = simple[k + 1];
			++*n;
			p->i++;
			return true;
		}
	}
	if (e != 'u')
		return jfail(p, "an escape JSON does not have");
	p->i++;
	if (!jhex4(p, &cp))
		return false;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jfail(p, "a lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->i + 2 > p->len || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
			return jfail(p, "a lone high surrogate");
		p->i += 2;
		if (!jhex4(p, &lo))
			return false;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jfail(p, "a high surrogate without its low one");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	char tmp[4];
	size_t k = json_string_decode(cp, tmp);
	if (out != NULL)
		memcpy(out + *n, tmp, k);
	*n += k;
	return true;
}

/* A string at p->i (a '"'); decoded to out when out is not NULL. */
static bool
jstring(struct jp *p, char *out, size_t *out_len)
{
	size_t n = 0;

	p->i++;
	while (p->i < p->len) {
		unsigned char c = (unsigned char)p->s[p->i];
		if (c == '"') {
			p->i++;
			if (out_len != NULL)
				*out_len = n;
			return true;
		}
		if (c < 0x20)
			return jfail(p, "a raw control byte in a string");
		if (c == '\\') {
			p->i++;
			if (p->i >= p->len)
				break;
			if (!jescape(p, out, &n))
				return false;
			continue;
		}
		size_t k = 1;
		if (c >= 0x80 && (k = utf8_valid((const unsigned char *)p->s + p->i,
						 p->len - p->i)) == 0)
			return jfail(p, "a byte that is not valid UTF-8");
		if (out != NULL)
			memcpy(out + n, p->s + p->i, k);
		n += k;
		p->i += k;
	}
	return jfail(p, "unterminated string");
}

static bool
jdigits(struct jp *p)
{
	size_t start = p->i;

	while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

static bool
jnumber(struct jp *p)
{
	if (p->s[p->i] == '-')
		p->i++;
	if (p->i < p->len && p->s[p->i] == '0')
		p->i++;
	else if (p->i >= p->len || p->s[p->i] < '1' || p->s[p->i] > '9' || !jdigits(p))
		return jfail(p, "not a number");
	if (p->i < p->len && p->s[p->i] == '.') {
		p->i++;
		if (!jdigits(p))
			return jfail(p, "no digits after '.'");
	}
	if (p->i < p->len && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->len && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!jdigits(p))
			return jfail(p, "no digits in the exponent");
	}
	return true;
}

static bool jvalue(struct jp *p, struct fmt_field *f);

static bool
jliteral(struct jp *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->i < n || memcmp(p->s + p->i, word, n) != 0)
		return jfail(p, "not a JSON value");
	p->i += n;
	return true;
}

static bool
jkey_seen(const struct fmt_doc *d, const char *key, size_t len)
{
	for (size_t k = 0; k < d->n; k++)
		if (d->f[k].key_len == len && memcmp(d->f[k].key, key, len) == 0)
			return true;
	return false;
}

/* One "key": value; kept in p->d when top is set. */
static bool
jmember(struct jp *p, bool top)
{
	struct fmt_field *f = NULL;
	char *key = NULL;
	size_t key_len = 0;

	if (p->i >= p->len || p->s[p->i] != '"')
		return jfail(p, "an object key must be a string");
	if (top) {
		if (p->d->n >= FMT_FIELDS_MAX)
			return jfail(p, "too many members");
		key = store_begin(p->d);
	}
	if (!jstring(p, key, &key_len))
		return false;
	if (top) {
		if (jkey_seen(p->d, key, key_len))
			return jfail(p, "a key twice in one object");
		store_end(p->d, key_len);
		f = &p->d->f[p->d->n++];
		f->key = key;
		f->key_len = key_len;
	}
	jws(p);
	if (p->i >= p->len || p->s[p->i] != ':')
		return jfail(p, "no ':' after a key");
	p->i++;
	jws(p);
	return jvalue(p, f);
}

static bool
jcontainer(struct jp *p, char close, bool top)
{
	if (++p->depth > JSON_DEPTH_MAX)
		return jfail(p, "nested too deep");
	p->i++;
	jws(p);
	if (p->i < p->len && p->s[p->i] == close) {
		p->i++;
		p->depth--;
		return true;
	}
	for (;;) {
		if (!(close == '}' ? jmember(p, top) : jvalue(p, NULL)))
			return false;
		jws(p);
		if (p->i >= p->len)
			return jfail(p, "unterminated object or array");
		if (p->s[p->i] == close) {
			p->i++;
			p->depth--;
			return true;
		}
		if (p->s[p->i] != ',')
			return jfail(p, "no ',' between members");
		p->i++;
		jws(p);
	}
}

/* A value at p->i; described in f when f is not NULL (a top-level member). */
static bool
jvalue(struct jp *p, struct fmt_field *f)
{
	size_t start = p->i;
	enum json_type type;
	bool ok;

	if (p->i >= p->len)
		return jfail(p, "a value is missing");
	switch (p->s[p->i]) {
	case '{':
		type = J_OBJECT;
		ok = jcontainer(p, '}', false);
		break;
	case '[':
		type = J_ARRAY;
		ok = jcontainer(p, ']', false);
		break;
	case '"':
		type = J_STRING;
		if (f != NULL) {
			f->val = store_begin(p->d);
			ok = jstring(p, f->val, &f->val_len);
			if (ok)
				store_end(p->d, f->val_len);
		} else {
			ok = jstring(p, NULL, NULL);
		}
		break;
	case 't': type = J_TRUE; ok = jliteral(p, "true"); break;
	case 'f': type = J_FALSE; ok = jliteral(p, "false"); break;
	case 'n': type = J_NULL; ok = jliteral(p, "null"); break;
	default:
		type = J_NUMBER;
		ok = jnumber(p);
	}
	if (ok && f != NULL) {
		f->type = type;
		f->raw = p->s + start;
		f->raw_len = p->i - start;
	}
	return ok;
}

const char *
json_array(const char *text, size_t len, struct fmt_span *items, size_t max,
	   size_t *n)
{
	struct jp p = { .s = text, .len = len };

	*n = 0;
	jws(&p);
	if (p.i >= len || text[p.i] != '[')
		return "not an array";
	p.i++;
	jws(&p);
	if (p.i < len && text[p.i] == ']') {
		p.i++;
	} else {
		for (;;) {
			size_t start = p.i;
			if (!jvalue(&p, NULL))
				return p.err;
			if (*n < max)
				items[*n] = (struct fmt_span){ text + start, p.i - start };
			++*n;
			jws(&p);
			if (p.i < len && text[p.i] == ']') {
				p.i++;
				break;
			}
			if (p.i >= len || text[p.i] != ',')
				return "no ',' between elements";
			p.i++;
			jws(&p);
		}
	}
	jws(&p);
	return p.i == len ? NULL : "bytes after the array";
}

const char *
json_parse(const char *text, size_t len, struct fmt_doc *d)
{
	struct jp p = { .s = text, .len = len, .d = d };

	if (d != NULL)
		store_init(d, len);
	jws(&p);
	if (d != NULL) {
		if (p.i >= len || text[p.i] != '{')
			return fail(d, p.i, "the top level is not an object");
		if (!jcontainer(&p, '}', true))
			return p.err;
	} else if (!jvalue(&p, NULL)) {
		return p.err;
	}
	jws(&p);
	if (p.i != len)
		return fail(d, p.i, "bytes after the JSON value");
	return NULL;
}

/* ---- the header -------------------------------------------------------------- */

/* RFC 2045 token: printable ASCII except space, tspecials, and the '%' of the encoding. */
static bool
header_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=%", c) == NULL;
}

static int
hex_upper(char c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= '0' && c <= '9')
		return c - '0';
	return -1;
}

/*
 * One value of the header (escape_header's contract), exactly len bytes:
 * an RFC 2045 token, or a quoted-string read as RFC 5322 does (a
 * quoted-pair is the character after the backslash) and then
 * percent-decoded (%HH, upper-case hex; a '%' is always encoded).
 */
static bool
header_value_decode(const char *s, size_t len, char *out, size_t *out_len,
		    bool *quoted, const char **err)
{
	size_t i, n = 0;

	*quoted = len > 0 && s[0] == '"';
	if (!*quoted) {
		for (i = 0; i < len; i++) {
			if (!header_bare((unsigned char)s[i])) {
				*err = "a byte an RFC 2045 token must not hold";
				return false;
			}
			out[i] = s[i];
		}
		*out_len = len;
		if (len == 0)
			*err = "an empty value";
		return len > 0;
	}
	/* RFC 5322 first: qtext, and quoted-pairs */
	for (i = 1; i < len && s[i] != '"'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\' && ++i < len)
			c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e) {
			*err = "a byte outside printable ASCII in a quoted-string";
			return false;
		}
		out[n++] = (char)c;
	}
	if (i + 1 != len) {
		*err = i >= len ? "an unterminated quoted-string" : "bytes after a quoted-string";
		return false;
	}
	/* then the percent-encoding, in place */
	size_t m = 0;
	for (i = 0; i < n; i++) {
		if (out[i] != '%') {
			out[m++] = out[i];
			continue;
		}
		if (i + 2 >= n || hex_upper(out[i + 1]) < 0 || hex_upper(out[i + 2]) < 0) {
			*err = "'%' not followed by two upper-case hex digits";
			return false;
		}
		out[m++] = (char)(hex_upper(out[i + 1]) << 4 | hex_upper(out[i + 2]));
		i += 2;
	}
	n = m;
	*out_len = n;
	return true;
}

const char *
fmt_header_value(const char *s, size_t len, char *out, size_t *out_len)
{
	const char *err = NULL;
	bool quoted;

	return header_value_decode(s, len, out, out_len, &quoted, &err) ? NULL : err;
}

static const char *
header_lines(const char *v, size_t len, size_t name_len, struct fmt_doc *d)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c != '\n' && c != '\t' && (c < 0x20 || c > 0x7e))
			return fail(d, i, "a byte that is not printable ASCII, tab or a line break");
	}
	for (int lineno = 0;; lineno++) {
		const char *nl = memchr(v + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - v) : len;
		if (end - start + (lineno == 0 ? name_len + 2 : 0) > HEADER_LINE_MAX)
			return fail(d, start, "a line longer than 998 bytes");
		if (lineno > 0) {
			bool other = false;
			if (end == start || (v[start] != ' ' && v[start] != '\t'))
				return fail(d, start, "a continuation line that does not start with white space");
			for (size_t k = start; k < end && !other; k++)
				other = v[k] != ' ' && v[k] != '\t';
			if (!other)
				return fail(d, start, "a continuation line of white space only");
		}
		if (nl == NULL)
			return NULL;
		start = end + 1;
	}
}

/* End of the item starting at i: a ';' and white space outside quotes, or the end. */
static size_t
item_end(const char *u, size_t len, size_t i, const char **err)
{
	bool quoted = false;

	for (; i < len; i++) {
		if (quoted && u[i] == '\\') {
			i++;
		} else if (u[i] == '"') {
			quoted = !quoted;
		} else if (!quoted && u[i] == ';') {
			if (i + 1 >= len || (u[i + 1] != ' ' && u[i + 1] != '\t'))
				*err = "a ';' not followed by one space or tab";
			return i;
		}
	}
	return len;
}

const char *
header_parse(const char *value, size_t len, size_t name_len, struct fmt_doc *d)
{
	const char *err = NULL;

	store_init(d, len);
	if ((err = header_lines(value, len, name_len, d)) != NULL)
		return err;
	char *u = store_begin(d);
	size_t ulen = 0;
	for (size_t i = 0; i < len; i++)
		if (value[i] != '\n')
			u[ulen++] = value[i];
	store_end(d, ulen);
	for (size_t i = 0, item = 0; i < ulen; item++) {
		size_t end = item_end(u, ulen, i, &err);
		if (err != NULL)
			return fail(d, end, err);
		char *out = store_begin(d);
		size_t n;
		bool quoted;
		if (item == 0) {
			if (!header_value_decode(u + i, end - i, out, &n, &quoted, &err))
				return fail(d, i, err);
			d->lead = out;
			d->lead_len = n;
			d->lead_quoted = quoted;
			store_end(d, n);
		} else {
			size_t k = i;
			while (k < end && is_key_char(u[k]))
				k++;
			if (k == i || k >= end || u[k] != '=')
				return fail(d, i, "an item that is not key=value");
			if (d->n >= FMT_FIELDS_MAX)
				return fail(d, i, "too many items");
			struct fmt_field *f = &d->f[d->n++];
			f->key = store_copy(d, u + i, k - i);
			f->key_len = k - i;
			f->val = store_begin(d);
			if (!header_value_decode(u + k + 1, end - k - 1, f->val, &f->val_len,
						 &f->quoted, &err))
				return fail(d, k + 1, err);
			store_end(d, f->val_len);
			f->raw = u + k + 1;
			f->raw_len = end - k - 1;
		}
		if (end == ulen)
			break;
		i = end + 2;	/* the ';' and one space or tab */
		if (i >= ulen || u[i] == ' ' || u[i] == '\t')
			return fail(d, i, "an empty item, or more than one space after ';'");
	}
	if (ulen == 0)
		return fail(d, 0, "an empty header");
	return NULL;
}

/* ---- cuts ---------------------------------------------------------------------- */

const char *
fmt_cut_check(const char *got, size_t got_len, const char *src, size_t max,
	      bool *split)
{
	size_t mark = 3, src_len = src ? strlen(src) : 0;

	*split = false;
	if (src == NULL)
		src = "";
	if (src_len <= max) {
		if (got_len != src_len || memcmp(got, src, src_len) != 0)
			return "an input within the cap is not kept whole";
		return NULL;
	}
	if (got_len < mark || memcmp(got + got_len - mark, "...", mark) != 0)
		return "a cut value does not end in \"...\"";
	size_t kept = got_len - mark;
	if (kept > max || kept + 3 < max)
		return "a cut value keeps more than the cap, or over 3 bytes less";
	if (memcmp(got, src, kept) != 0)
		return "a cut value is not the start of the input";
	for (size_t i = 0; i < kept;) {
		size_t k = 1;
		if ((unsigned char)src[i] >= 0x80)
			k = utf8_valid((const unsigned char *)src + i, src_len - i);
		if (k == 0)
			k = 1;
		if (i + k > kept) {
			*split = true;
			break;
		}
		i += k;
	}
	return NULL;
}
