/*
 * NAME
 *	reply - find the reply codes in an SMTP reply or a mail log line
 * DESCRIPTION
 *	See reply.h. Where to look for the basic code, in order: after
 *	"said: " (Postfix's and qmail's remote replies), at the start of the
 *	line (a bare reply), after " reject: " (Postfix's own rejects), then
 *	the first three-digit word that reads like a reply anywhere. A code
 *	is 2-5, then 0-5, then a digit, standing alone (not in an address,
 *	a bracketed pid, a longer number or "(432 bytes)"), followed by a
 *	space, a '-', or the end.
 */
#include "reply.h"

#include <ctype.h>
#include <string.h>

#include "escape.h"

static bool
is_word_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' ||
	       c == '[' || c == '/' || c == '=' || c == '#' || c == '-' ||
	       c == ':' || c == '@';
}

static size_t enhanced_at(const char *s);

static bool
code_digits(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]);
}

/*
 * A reply code at s (start is the start of the line, for the look-behind).
 * In running text the second digit must be one RFC 5321 defines (0-5);
 * a line that starts with a code may have any, and may follow it with ':'.
 */
static bool
code_at(const char *start, const char *s)
{
	if (!code_digits(s))
		return false;
	if (s[1] > '5' && s != start)
		return false;
	if (s > start && is_word_char(s[-1]))
		return false;
	if (s[3] != ' ' && s[3] != '-' && s[3] != '\0' && s[3] != '\n' &&
	    s[3] != '\r' && !(s == start && s[3] == ':'))
		return false;
	if (strncmp(s + 3, " bytes", 6) == 0)
		return false;
	return true;
}

/* Length of an enhanced code c.s.d at s (c in 2,4,5; s, d 1-3 digits), or 0. */
static size_t
enhanced_at(const char *s)
{
	size_t n = 1, digits;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (int part = 0; part < 2; part++) {
		if (s[n] != '.')
			return 0;
		n++;
		for (digits = 0; isdigit((unsigned char)s[n]) && digits < 4; digits++)
			n++;
		if (digits == 0 || digits > 3)
			return 0;
	}
	if (s[n] == '.' || isalnum((unsigned char)s[n]))
		return 0;
	return n;
}

static const char *
find_code(const char *line)
{
	const char *p;

	if ((p = strstr(line, "said: ")) != NULL) {
		for (p += 6; *p == ' '; p++)
			;
		if (code_at(p, p))
			return p;
	}
	for (p = line; *p == ' ' || *p == '\t' || *p == '#'; p++)
		;
	if (code_at(p, p))
		return p;
	if ((p = strstr(line, " reject: ")) != NULL) {
		for (p += 9; *p != '\0'; p++)
			if (code_at(line, p))
				return p;
	}
	/* in running text a number is a reply only where replies stand:
	 * after "(", a quote (Exim's C="250 ok") or ": ", or with an enhanced
	 * code after it ("after 450 seconds", "sent 250 messages" are not) */
	for (p = line; (p = strpbrk(p, "2345")) != NULL; p++)
		if (code_at(line, p) &&
		    ((p > line && (p[-1] == '(' || p[-1] == '"')) ||
		     (p > line + 1 && p[-1] == ' ' && p[-2] == ':') ||
		     (p[3] != '\0' && enhanced_at(p + 4) > 0)))
			return p;
	/* glued to a word ("reject=553 5.1.8", "Reason:550 5.4.6"): only
	 * with an enhanced code after it, which makes it unmistakable */
	for (p = line; (p = strpbrk(p, "2345")) != NULL; p++)
		if (code_digits(p) && p[1] <= '5' && p[3] == ' ' &&
		    (p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '.')) &&
		    enhanced_at(p + 4) > 0)
			return p;
	return NULL;
}

/*
 * An enhanced code away from the reply code: qmail's "#5.1.1" (also
 * "(#5.1.1)"), "(5.1.1)", a log field "dsn=5.1.1", or after ": " (Postfix
 * "milter-reject: ...: 4.7.1 ..."). A bare x.y.z elsewhere in the
 * text is not taken: it is as often a version number or part of a quoted
 * inner reply.
 */
static const char *
find_enhanced(const char *s, size_t *len)
{
	static const char *const marks[] = { "#", "(", "dsn=", ": " };

	for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
		size_t ml = strlen(marks[m]);
		for (const char *p = strstr(s, marks[m]); p != NULL;
		     p = strstr(p + 1, marks[m]))
			if ((*len = enhanced_at(p + ml)) > 0)
				return p + ml;
	}
	return NULL;
}

static void
copy_enhanced(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
find_event(const char *line, struct reply *r)
{
	static const struct { const char *needle; enum reply_event event; } events[] = {
		{ "timeout after ", REPLY_EVENT_TIMEOUT },
		{ "lost connection after ", REPLY_EVENT_LOST },
	};

	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		const char *p = strstr(line, events[i].needle);
		if (p == NULL)
			continue;
		p += strlen(events[i].needle);
		size_t n = 0;
		while (isupper((unsigned char)p[n]) || p[n] == '-')
			n++;
		if (n == 0 || n >= sizeof r->stage)
			continue;
		memcpy(r->stage, p, n);
		r->stage[n] = '\0';
		r->event = events[i].event;
		return;
	}
}

/* Parse one line, NUL-terminated at its end; offsets stay within it. */
static void
parse_line(const char *line, struct reply *r)
{
	const char *end = line + strlen(line);
	const char *code, *p;
	size_t len;

	find_event(line, r);
	code = find_code(line);
	if (code != NULL) {
		r->code = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
		r->continued = code[3] == '-';
		p = code + 3;
		if (*p == '-' || *p == ' ' || *p == ':')
			p++;
		while (*p == ' ')
			p++;
		if (strncmp(p, code, 3) == 0 && (p[3] == '-' || p[3] == ' '))
			p += 4;		/* "550 550-5.1.1 ...": the code said twice */
		if ((len = enhanced_at(p)) > 0) {
			copy_enhanced(r->enhanced, sizeof r->enhanced, p, len);
			p += len;
		}
		while (*p == ' ')
			p++;
		r->text = p;
		r->text_len = (size_t)(end - p);
	}
	if (r->enhanced[0] == '\0') {
		/* a bare enhanced code ("5.7.1"), qmail's (#5.1.1), dsn=5.1.1 */
		const char *e = line;
		while (*e == ' ' || *e == '\t')
			e++;
		if ((len = enhanced_at(e)) == 0)
			e = find_enhanced(line, &len);
		if (e != NULL)
			copy_enhanced(r->enhanced, sizeof r->enhanced, e, len);
	}
}

bool
reply_parse(const char *line, struct reply *r)
{
	char buf[REPLY_LINE_MAX];
	size_t len = strcspn(line, "\r\n");

	memset(r, 0, sizeof *r);
	r->code = -1;
	/* only this line, and only its first REPLY_LINE_MAX - 1 bytes: no
	 * search may run into the next line or on for ever */
	if (len >= sizeof buf)
		len = sizeof buf - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	parse_line(buf, r);
	if (r->text != NULL)
		r->text = line + (r->text - buf);	/* back into the caller's string */
	return r->code > 0 || r->enhanced[0] != '\0' || r->event != REPLY_EVENT_NONE;
}

bool
reply_join(const char *lines, struct reply *r, struct sbuf *text)
{
	struct reply first, cur;
	const char *line = lines;
	bool have = false;

	memset(&first, 0, sizeof first);
	first.code = -1;
	while (line != NULL && *line != '\0') {
		if (reply_parse(line, &cur)) {
			if (!have) {
				first = cur;
				have = true;
			} else if (first.enhanced[0] == '\0' && cur.enhanced[0] != '\0' &&
				   (cur.code == first.code || cur.code < 0)) {
				/* "550-Text\n550 5.7.1 more": the code on a later line */
				memcpy(first.enhanced, cur.enhanced, sizeof first.enhanced);
			}
			if (cur.text != NULL && cur.text_len > 0) {
				if (text->len > 0)
					sbuf_putc(text, ' ');
				sbuf_putn(text, cur.text, cur.text_len);
			}
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	*r = first;
	r->continued = false;
	r->text = NULL;
	r->text_len = 0;
	return have;
}
