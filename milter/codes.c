/*
 * NAME
 *	codes - the SMTP reply-code knowledge base
 * DESCRIPTION
 *	See codes.h. The entries come from codes.def through an X-macro; the
 *	index (basic code -> entry, subject/detail -> entry) is built once.
 */
#include "codes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct code_entry entries[] = {
#define ST_CODE(k, f, a, m, adv, r) { k, f, a, m, adv, r },
#include "codes.def"
#undef ST_CODE
};

#define N_ENTRIES (sizeof entries / sizeof entries[0])
#define DETAIL_MAX 1000

static const struct code_entry *by_basic[1000];
static const struct code_entry *by_subject[10];
static const struct code_entry *by_detail[10][DETAIL_MAX];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void
build_index(void)
{
	for (size_t i = 0; i < N_ENTRIES; i++) {
		const char *k = entries[i].key;
		int s, d;
		char tail;

		if (strlen(k) == 3 && k[0] >= '1' && k[0] <= '5')
			by_basic[atoi(k)] = &entries[i];
		/* class rows ("5.X.X") are found by codes_lookup only */
		else if (sscanf(k, "X.%d.%c", &s, &tail) == 2 && tail == 'X' &&
			 s >= 0 && s < 10)
			by_subject[s] = &entries[i];
		else if (sscanf(k, "X.%d.%d", &s, &d) == 2 && s >= 0 && s < 10 &&
			 d >= 0 && d < DETAIL_MAX)
			by_detail[s][d] = &entries[i];
	}
}

size_t
codes_count(void)
{
	return N_ENTRIES;
}

const struct code_entry *
codes_at(size_t i)
{
	return i < N_ENTRIES ? &entries[i] : NULL;
}

const struct code_entry *
codes_lookup(const char *key)
{
	for (size_t i = 0; i < N_ENTRIES; i++)
		if (strcmp(entries[i].key, key) == 0)
			return &entries[i];
	return NULL;
}

/* "c.s.d" to its parts; -1 unless it is a well-formed enhanced code. */
static int
split_enhanced(const char *e, int *c, int *s, int *d)
{
	int n = 0;

	if (sscanf(e, "%1d.%3d.%3d%n", c, s, d, &n) != 3 || e[n] != '\0')
		return -1;
	/* RFC 3463: subject and detail of one to three digits */
	if ((*c != 2 && *c != 4 && *c != 5) || *s < 0 || *s > 999 || *d < 0 || *d > 999)
		return -1;
	return 0;
}

bool
codes_explain(int basic, const char *enhanced, struct explanation *ex)
{
	int c = 0, s = 0, d = 0;
	bool known = true;

	pthread_once(&index_once, build_index);
	memset(ex, 0, sizeof *ex);
	ex->basic = basic >= 100 && basic <= 599 ? basic : -1;
	if (ex->basic > 0) {
		ex->basic_entry = by_basic[basic];
		ex->class_digit = (char)('0' + basic / 100);
		known = ex->basic_entry != NULL;
	}
	if (enhanced != NULL && *enhanced != '\0') {
		if (split_enhanced(enhanced, &c, &s, &d) < 0)
			return false;
		snprintf(ex->enhanced, sizeof ex->enhanced, "%d.%d.%d", c, s, d);
		ex->subject_entry = s < 10 ? by_subject[s] : NULL;
		ex->detail_entry = s < 10 && d < DETAIL_MAX ? by_detail[s][d] : NULL;
		known = known && ex->detail_entry != NULL;
		if (ex->class_digit == 0)
			ex->class_digit = (char)('0' + c);
		else if (ex->class_digit != '0' + c)
			ex->conflict = true;
	}
	return known && (ex->basic > 0 || ex->enhanced[0] != '\0');
}

const char *
codes_class_name(char class_digit)
{
	switch (class_digit) {
	case '1': return "positive preliminary reply";
	case '2': return "positive completion";
	case '3': return "positive intermediate";
	case '4': return "transient failure";
	case '5': return "permanent failure";
	default:  return "not a valid reply class";
	}
}

const char *
codes_fate_text(enum code_fate fate, char class_digit)
{
	if (fate == FATE_BY_CLASS) {
		switch (class_digit) {
		case '2': fate = FATE_DELIVERED; break;
		case '4': fate = FATE_RETRY; break;
		case '5': fate = FATE_BOUNCED; break;
		default: fate = FATE_NONE; break;
		}
	}
	switch (fate) {
	case FATE_DELIVERED: return "the mail was accepted (or the command succeeded)";
	case FATE_WAITING:   return "the server waits for more input";
	case FATE_RETRY:     return "the sending server keeps the mail and retries later";
	case FATE_BOUNCED:   return "the mail is refused; the sender gets a bounce";
	case FATE_NONE:      return "no mail is at stake";
	case FATE_BY_CLASS:  break;
	}
	return "";
}

const char *
codes_actor_text(enum code_actor actor)
{
	switch (actor) {
	case ACTOR_NOBODY:         return "nobody";
	case ACTOR_SENDER:         return "the sender";
	case ACTOR_SENDER_ADMIN:   return "the sending system's admin";
	case ACTOR_RECEIVER_ADMIN: return "the receiving system's admin";
	case ACTOR_CLIENT:         return "the SMTP client (a protocol error)";
	}
	return "";
}

/* RFC 5321 4.2.1: the second digit's category. */
static const char *
category(int basic)
{
	static const char *const names[] = {
		"syntax", "information", "connections", "unspecified",
		"unspecified", "mail system",
	};
	int second = basic / 10 % 10;

	return second <= 5 ? names[second] : "not a category RFC 5321 defines";
}

static void
put_codes(const struct explanation *ex, struct sbuf *sb)
{
	if (ex->basic > 0)
		sbuf_printf(sb, "%d", ex->basic);
	if (ex->enhanced[0] != '\0')
		sbuf_printf(sb, "%s%s", ex->basic > 0 ? " " : "", ex->enhanced);
}

void
codes_summary(const struct explanation *ex, struct sbuf *sb)
{
	put_codes(ex, sb);
	sbuf_printf(sb, ": %s", codes_class_name(ex->class_digit));
	if (ex->basic_entry != NULL)
		sbuf_printf(sb, "; %s", ex->basic_entry->meaning);
	else if (ex->basic > 0)
		sbuf_printf(sb, "; %d is not a registered code", ex->basic);
	if (ex->detail_entry != NULL)
		sbuf_printf(sb, "; %s", ex->detail_entry->meaning);
	else if (ex->subject_entry != NULL)
		sbuf_printf(sb, "; %s is not registered (%s)", ex->enhanced,
			    ex->subject_entry->meaning);
	else if (ex->enhanced[0] != '\0')
		sbuf_printf(sb, "; %s is not registered (no subject of that number is)",
			    ex->enhanced);
	if (ex->conflict)
		sbuf_printf(sb, "; the classes disagree, the basic code %d decides",
			    ex->basic);
}

/* Word-wrap text at width, every line after the first indented. */
static void
wrap(struct sbuf *sb, const char *label, const char *text, int width)
{
	const int indent = 4;
	int col = indent + (int)strlen(label);
	bool line_start = true;

	sbuf_printf(sb, "%*s%s", indent, "", label);
	while (*text != '\0') {
		while (*text == ' ')
			text++;
		size_t word = strcspn(text, " ");
		if (word == 0)
			break;
		if (!line_start && col + 1 + (int)word > width) {
			sbuf_printf(sb, "\n%*s", indent + 2, "");
			col = indent + 2;
			line_start = true;
		}
		if (!line_start) {
			sbuf_putc(sb, ' ');
			col++;
		}
		sbuf_putn(sb, text, word);
		col += (int)word;
		text += word;
		line_start = false;
	}
	sbuf_putc(sb, '\n');
}

static void
describe_entry(struct sbuf *sb, const char *code, const struct code_entry *e,
	       char class_digit, int width)
{
	char head[160];

	snprintf(head, sizeof head, "%s ", code);
	wrap(sb, head, e->meaning, width);
	wrap(sb, "For the mail: ", codes_fate_text(e->fate, class_digit), width);
	wrap(sb, "Who acts: ", codes_actor_text(e->actor), width);
	wrap(sb, "What to do: ", e->advice, width);
	wrap(sb, "Defined in: ", e->reference, width);
}

void
codes_describe(const struct explanation *ex, struct sbuf *sb, int width)
{
	char text[256];

	put_codes(ex, sb);
	sbuf_printf(sb, ": %s\n", codes_class_name(ex->class_digit));
	if (ex->basic_entry != NULL) {
		snprintf(text, sizeof text, "%d", ex->basic);
		describe_entry(sb, text, ex->basic_entry, ex->class_digit, width);
	} else if (ex->basic > 0) {
		snprintf(text, sizeof text,
			 "not a registered code: class %c (%s), category %s",
			 ex->class_digit, codes_class_name(ex->class_digit),
			 category(ex->basic));
		wrap(sb, "", text, width);
	}
	if (ex->detail_entry != NULL) {
		describe_entry(sb, ex->enhanced, ex->detail_entry,
			       ex->class_digit, width);
	} else if (ex->enhanced[0] != '\0') {
		snprintf(text, sizeof text, "%s is not a registered enhanced code; its subject:",
			 ex->enhanced);
		wrap(sb, "", text, width);
		if (ex->subject_entry != NULL)
			describe_entry(sb, ex->subject_entry->key, ex->subject_entry,
				       ex->class_digit, width);
		else
			wrap(sb, "", "its subject is not registered either", width);
	}
	if (ex->conflict) {
		snprintf(text, sizeof text,
			 "The classes conflict: %d says %s, %s says %s. The basic code decides what the client does.",
			 ex->basic, codes_class_name(ex->class_digit), ex->enhanced,
			 codes_class_name(ex->enhanced[0]));
		wrap(sb, "Note: ", text, width);
	}
}
