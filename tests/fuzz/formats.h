/*
 * NAME
 *	formats - strict readers of what smtptrace writes: key=value lines,
 *	JSON, and the diagnostic header
 * SYNOPSIS
 *	struct fmt_doc d;
 *	if ((err = kv_parse(line, len, &d)) != NULL) ... fail ...
 *	... d.lead, d.f[i].key, d.f[i].val ... ; fmt_free(&d);
 * DESCRIPTION
 *	Written from the contracts in milter/escape.h and milter/render.h,
 *	not from the code, and stricter than any consumer: each reader
 *	rejects what those contracts do not allow, and decodes every value
 *	back to bytes. The decoding of one value is one function per format
 *	(kv_value_decode, json_string_decode, header_value_decode in
 *	formats.c): a change of an escaping contract is a change there.
 *
 *	kv_parse: the whole line printable ASCII (0x20-0x7e); a lead token
 *	(NOQUEUE or the escaped queue id) and ':'; then " key=value" fields,
 *	key [a-z0-9_]+, value a bare token (0x21-0x7e but '"', '\', '=') or a
 *	"quoted" string with \" \\ \r \n \t \xHH escapes only.
 *	json_parse: RFC 8259, strict (UTF-8 checked, no lone surrogates, no
 *	duplicate keys in the top-level object, nesting at most 32 deep);
 *	strings decode to bytes by escape_json's contract: \u0000-\u00ff is
 *	that raw byte, a higher code point its UTF-8, raw UTF-8 as it is.
 *	header_parse: ASCII, lines of at most 998 bytes (the first one after
 *	"Name: "), continuation lines that start with a space or tab and hold
 *	something else; unfolded (line breaks removed, RFC 5322 3.2.2) it is
 *	an authserv-id, then "; key=value" items (';' and one space or tab),
 *	each value an RFC 2045 token (no '%') or a quoted-string that RFC 5322
 *	unquoting and then percent-decoding (%HH) turn back into the value.
 *	Each returns NULL, or what is wrong (a string literal) with d->err_at.
 */
#ifndef SMTPTRACE_FUZZ_FORMATS_H
#define SMTPTRACE_FUZZ_FORMATS_H

#include <stdbool.h>
#include <stddef.h>

#define FMT_FIELDS_MAX	64

enum json_type { J_NONE, J_STRING, J_NUMBER, J_OBJECT, J_ARRAY, J_TRUE, J_FALSE, J_NULL };

struct fmt_field {
	char          *key;		/* decoded, NUL-terminated */
	size_t         key_len;
	char          *val;		/* decoded (JSON: strings only), NUL-terminated */
	size_t         val_len;
	bool           quoted;		/* kv, header: written in the quoted form */
	enum json_type type;		/* JSON */
	const char    *raw;		/* the value as written, in the input */
	size_t         raw_len;
};

struct fmt_doc {
	char            *lead;		/* kv: queue id token; header: authserv-id */
	size_t           lead_len;
	bool             lead_quoted;
	size_t           n;
	struct fmt_field f[FMT_FIELDS_MAX];
	size_t           err_at;	/* byte offset of an error */
	char            *store;		/* decoded text; malloc'd */
	size_t           store_len, store_cap;
};

const char *kv_parse(const char *line, size_t len, struct fmt_doc *d);
/* d NULL: validate only; else the top level must be an object, members kept. */
const char *json_parse(const char *text, size_t len, struct fmt_doc *d);
/* The elements of an array (the first max of them to items); n counts all. */
struct fmt_span {
	const char *s;
	size_t      len;
};
const char *json_array(const char *text, size_t len, struct fmt_span *items,
		       size_t max, size_t *n);
const char *header_parse(const char *value, size_t len, size_t name_len,
			 struct fmt_doc *d);
void fmt_free(struct fmt_doc *d);

/* One value alone, exactly len bytes; decoded to out (len bytes of room). */
const char *fmt_kv_value(const char *s, size_t len, char *out, size_t *out_len);
const char *fmt_header_value(const char *s, size_t len, char *out, size_t *out_len);

/*
 * The cut escape.h documents: got is src when src has at most max bytes;
 * else the start of its first max bytes (at most 3 fewer) and "...".
 * *split: the part kept ends inside a well-formed UTF-8 character of src
 * (which escape.h says a cut never does). NULL, or what is wrong.
 */
const char *fmt_cut_check(const char *got, size_t got_len, const char *src,
			  size_t max, bool *split);
/* Length of the well-formed UTF-8 character at s (RFC 3629), or 0. */
size_t utf8_valid(const unsigned char *s, size_t len);

/* A field by key, or NULL. */
const struct fmt_field *fmt_get(const struct fmt_doc *d, const char *key);

#endif
