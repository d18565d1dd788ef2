/*
 * NAME
 *	fuzz_logreader - smtptrace-explain --log and --verdicts on random logs,
 *	read in random chunks
 * DESCRIPTION
 *	explain.c is compiled into this file (its main renamed explain_main):
 *	--log is annotate_log(), a static function with a static reader.
 *	Standard input is what the binary is linked to read through
 *	-Wl,--wrap=read: __wrap_read serves the input on fd 0 in chunks the
 *	input chooses (1 byte to all of it, with EINTR now and then); every
 *	other fd goes to the real read(2). Standard output is a memory stream.
 *	annotate_log's reader is static: it is found at its first read (the
 *	start of its buffer) and zeroed before each later run. The smallest
 *	change to explain.c that would make this unnecessary: a function
 *	"int explain_log(int fd, FILE *out, bool json, bool all)" with the
 *	reader on its stack (as verdict_run already does).
 *
 *	Input: 4 control bytes, then the log.
 *	  byte 0  bit 0 --json for --log; bit 1 --all; bit 2 make the first
 *	          line longer than the 64 KiB buffer; bit 3 --verdicts --json;
 *	          bit 4 --verdicts --summary; bit 5 EINTR every third read
 *	  byte 1  seed of the chunk sizes
 *	  byte 2  largest chunk: 1, 3, 17, 256, 4096, 65536 bytes or all
 *	  byte 3  --window (1 to 64, or the default) and the table's cap
 *	          (1 to 16, or the default) for --verdicts
 *	Properties:
 *	prop_log_copy   --log: the output minus its annotation lines is the
 *	                input byte for byte (with FUZZ_KNOWN_BUGS=1 also for
 *	                a last line without a newline, which gets one today);
 *	                one annotation ("    smtptrace: ...", one line) after
 *	                exactly the lines worth explaining (judged by their
 *	                first 64 KiB)
 *	prop_log_json   --log --json: one JSON object a line, strict, for
 *	                exactly the lines worth explaining; its "input" is the
 *	                line cut at 4096 bytes, also for a line longer than the
 *	                64 KiB buffer (issue 8 item 7)
 *	prop_verdicts   --verdicts: every line parses (JSON, or key=value),
 *	                one verdict for each smtptrace kind=txn line of the input
 *	prop_chunking   each output is the same whatever the chunks
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "codes.h"
#include "escape.h"
#include "formats.h"
#include "fuzz_common.h"
#include "maillog.h"
#include "reply.h"
#include "sbuf.h"
#include "verdict.h"
#include "version.h"

int explain_main(int argc, char **argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);

#define main explain_main
#include "explain.c"
#undef main

_Static_assert(offsetof(struct reader, buf) == 0, "the reader's buffer must come first");

#define LONG_LINE	(READ_MAX + 100)
#define JSON_INPUT_MAX	4096	/* explain(): escape_json(input, 4096) */

/* ---- standard input, in chunks ------------------------------------------------ */

static struct source {
	bool        on;
	const char *p;
	size_t      len, pos;
	uint32_t    seed;
	size_t      max;		/* largest chunk; 0: all that is asked */
	bool        eintr;
	unsigned    calls;
} src;

static struct reader *log_reader;	/* annotate_log's static reader */
static bool finding_reader;

ssize_t
__wrap_read(int fd, void *buf, size_t n)
{
	if (fd != 0 || !src.on)
		return __real_read(fd, buf, n);
	if (finding_reader && log_reader == NULL) {
		FUZZ_CHECK(n == READ_MAX, "annotate_log's first read is not at its buffer's start");
		log_reader = buf;
	}
	if (src.eintr && src.calls++ % 3 == 1) {
		errno = EINTR;
		return -1;
	}
	size_t left = src.len - src.pos, k = n < left ? n : left;
	if (src.max > 0) {
		src.seed = src.seed * 1103515245u + 12345u;
		size_t chunk = 1 + (src.seed >> 8) % src.max;
		if (chunk < k)
			k = chunk;
	}
	memcpy(buf, src.p + src.pos, k);
	src.pos += k;
	return (ssize_t)k;
}

static void
src_start(const char *p, size_t len, uint32_t seed, size_t max, bool eintr)
{
	src = (struct source){ .on = true, .p = p, .len = len, .seed = seed, .max = max,
			      .eintr = eintr };
}

/* ---- running a mode ------------------------------------------------------------- */

struct output {
	char  *text;
	size_t len;
};

static FILE *devnull;

/* Run fn with stdin from the source and stdout (and stderr) captured. */
static void
run(int (*fn)(void *), void *arg, struct output *out, int *rc)
{
	FILE *saved_out = stdout, *saved_err = stderr;
	FILE *mem = open_memstream(&out->text, &out->len);

	if (mem == NULL)
		abort();
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	stdout = mem;
	stderr = devnull;
	*rc = fn(arg);
	stdout = saved_out;
	stderr = saved_err;
	fclose(mem);
	src.on = false;
}

static int
run_log(void *arg)
{
	if (log_reader != NULL)
		memset(log_reader, 0, sizeof *log_reader);
	finding_reader = true;
	int rc = annotate_log(arg);
	finding_reader = false;
	return rc;
}

static int
run_verdicts(void *arg)
{
	return verdict_run(NULL, 0, arg);
}

/* ---- the input's lines ------------------------------------------------------------ */

struct line {
	const char *s;
	size_t      len;
	bool        newline;	/* ends in '\n' */
};

static struct line *
split_lines(const char *p, size_t len, size_t *n)
{
	struct line *lines = malloc((len + 1) * sizeof *lines);
	size_t start = 0;

	if (lines == NULL)
		abort();
	*n = 0;
	while (start < len) {
		const char *nl = memchr(p + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - p) : len;
		lines[(*n)++] = (struct line){ p + start, end - start, nl != NULL };
		start = end + 1;
	}
	return lines;
}

/* The first piece of a line as the reader hands it over: at most READ_MAX bytes. */
static char *
first_piece(const struct line *l)
{
	size_t n = l->len < READ_MAX ? l->len : READ_MAX;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, l->s, n);
	s[n] = '\0';
	return s;
}

static bool
worth(const struct line *l, const struct opts *o)
{
	struct reply r;
	char *s = first_piece(l);
	bool w = reply_parse(s, &r) && worth_explaining(&r, o);

	free(s);
	return w;
}

/* ---- properties ------------------------------------------------------------------ */

static void
prop_log_copy(const struct line *lines, size_t n, const struct opts *o,
	      const struct output *out)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		const struct line *l = &lines[i];
		FUZZ_CHECK(pos + l->len <= out->len && memcmp(out->text + pos, l->s, l->len) == 0,
			   "line %zu is not copied as it is (output byte %zu)", i, pos);
		pos += l->len;
		if (l->newline)
			FUZZ_CHECK(pos < out->len && out->text[pos] == '\n',
				   "line %zu: its newline lost", i);
		else
			FUZZ_CHECK(pos == out->len, "line %zu: something added after the "
				   "last line, which had no newline", i);
		if (l->newline)
			pos++;
		/* an unterminated last line is not annotated: that would change it */
		if (!worth(l, o) || !l->newline)
			continue;
		static const char mark[] = "    smtptrace: ";
		FUZZ_CHECK(pos + sizeof mark - 1 <= out->len &&
			   memcmp(out->text + pos, mark, sizeof mark - 1) == 0,
			   "line %zu: no annotation after a line worth one", i);
		const char *end = memchr(out->text + pos, '\n', out->len - pos);
		FUZZ_CHECK(end != NULL, "an annotation without its newline");
		pos = (size_t)(end - out->text) + 1;
	}
	FUZZ_CHECK(pos == out->len, "%zu bytes of output after the last line", out->len - pos);
}

static void
prop_log_json(const struct line *lines, size_t n, const struct opts *o,
	      const struct output *out)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		if (!worth(&lines[i], o))
			continue;
		const char *end = memchr(out->text + pos, '\n', out->len - pos);
		FUZZ_CHECK(pos < out->len && end != NULL, "no JSON line for line %zu", i);
		size_t len = (size_t)(end - out->text) - pos;
		struct fmt_doc d;
		const char *err = json_parse(out->text + pos, len, &d);
		if (err != NULL)
			fuzz_dump("output line", out->text + pos, len);
		FUZZ_CHECK(err == NULL, "--log --json: %s at %zu", err, d.err_at);
		const struct fmt_field *in = fmt_get(&d, "input");
		FUZZ_CHECK(in != NULL && in->type == J_STRING, "no \"input\"");
		char *line = first_piece(&lines[i]);
		bool split;
		const char *cut = fmt_cut_check(in->val, in->val_len, line, JSON_INPUT_MAX, &split);
		FUZZ_CHECK(cut == NULL && !split, "line %zu: \"input\" is not the line: %s",
			   i, cut ? cut : "a character split");
		free(line);
		fmt_free(&d);
		pos = (size_t)(end - out->text) + 1;
	}
	FUZZ_CHECK(pos == out->len, "more JSON lines than lines worth explaining");
}

static void
prop_verdicts(const struct line *lines, size_t n, const struct verdict_opts *vo,
	      const struct output *out)
{
	struct maillog_event *ev = malloc(sizeof *ev);
	size_t txns = 0, verdicts = 0;
	static char kv[8 * 1024 * 1024];

	if (ev == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		txns += maillog_classify(lines[i].s, lines[i].len, ev) == MAILLOG_TXN;
	free(ev);
	if (vo->summary)
		return;
	for (size_t pos = 0; pos < out->len; verdicts++) {
		const char *end = memchr(out->text + pos, '\n', out->len - pos);
		FUZZ_CHECK(end != NULL, "a verdict without its newline");
		size_t len = (size_t)(end - out->text) - pos;
		struct fmt_doc d;
		const char *err;
		if (vo->json) {
			err = json_parse(out->text + pos, len, &d);
		} else {
			FUZZ_CHECK(len + 4 < sizeof kv, "a verdict of %zu bytes", len);
			memcpy(kv, "V: ", 3);
			memcpy(kv + 3, out->text + pos, len);
			err = kv_parse(kv, len + 3, &d);
		}
		if (err != NULL)
			fuzz_dump("verdict", out->text + pos, len);
		FUZZ_CHECK(err == NULL, "a verdict line: %s at %zu", err, d.err_at);
		fmt_free(&d);
		pos = (size_t)(end - out->text) + 1;
	}
	FUZZ_CHECK(verdicts == txns, "%zu verdicts for %zu smtptrace transaction lines",
		   verdicts, txns);
}

static void
prop_chunking(const char *what, const struct output *a, const struct output *b)
{
	FUZZ_EXPECT_BYTES(what, a->text, a->len, b->text, b->len);
}

/* ---- the input -------------------------------------------------------------------- */

/* The log, with the first line made longer than the reader's buffer when asked. */
static char *
build_log(const uint8_t *data, size_t size, bool pad, size_t *len)
{
	size_t extra = pad ? LONG_LINE : 0;
	char *log = malloc(size + extra + 1);
	const uint8_t *nl = memchr(data, '\n', size);
	size_t at = nl ? (size_t)(nl - data) : size;

	if (log == NULL)
		abort();
	memcpy(log, data, at);
	memset(log + at, 'x', extra);
	memcpy(log + at + extra, data + at, size - at);
	*len = size + extra;
	return log;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunk_max[] = { 1, 3, 17, 256, 4096, 65536, 0, 0 };
	uint8_t ctl[4] = { 0 };
	struct output whole, chunked;
	struct opts o = { .log = true };
	size_t len, n;
	int rc, rc2;

	for (size_t i = 0; i < 4 && i < size; i++)
		ctl[i] = data[i];
	size_t skip = size < 4 ? size : 4;
	char *log = build_log(data + skip, size - skip, ctl[0] & 4, &len);
	struct line *lines = split_lines(log, len, &n);
	o.json = ctl[0] & 1;
	o.all = ctl[0] & 2;
	size_t max = chunk_max[ctl[2] % 8];
	bool eintr = ctl[0] & 32;

	src_start(log, len, 0, 0, false);
	run(run_log, &o, &whole, &rc);
	FUZZ_CHECK(rc == 0, "--log exit %d", rc);
	if (o.json)
		prop_log_json(lines, n, &o, &whole);
	else
		prop_log_copy(lines, n, &o, &whole);
	src_start(log, len, ctl[1], max, eintr);
	run(run_log, &o, &chunked, &rc2);
	prop_chunking("--log output in chunks", &chunked, &whole);
	free(whole.text);
	free(chunked.text);

	struct verdict_opts vo = {
		.json = ctl[0] & 8, .summary = ctl[0] & 16,
		.window = ctl[3] < 128 ? 1 + ctl[3] % 64 : VERDICT_WINDOW,
		.cap = ctl[3] & 1 ? 1 + ctl[3] % 16 : VERDICT_CAP,
	};
	src_start(log, len, 0, 0, false);
	run(run_verdicts, &vo, &whole, &rc);
	FUZZ_CHECK(rc == 0, "--verdicts exit %d", rc);
	prop_verdicts(lines, n, &vo, &whole);
	src_start(log, len, ctl[1], max, eintr);
	run(run_verdicts, &vo, &chunked, &rc2);
	prop_chunking("--verdicts output in chunks", &chunked, &whole);
	free(whole.text);
	free(chunked.text);
	free(lines);
	free(log);
	return 0;
}
