/*
 * NAME
 *	verdict_run - smtptrace-explain --verdicts: files or stdin through the join
 * DESCRIPTION
 *	See verdict.h (verdict_run). Reads each file (or standard input) in
 *	lines of constant memory, classifies them (maillog.c), feeds the join
 *	(verdict.c) and prints each verdict as it settles, or the summary
 *	(summary.c) at the end; stdout is flushed before every read, so
 *	tail -F works.
 */
#include "verdict.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "summary.h"

#define READ_MAX (256 * 1024)

/*
 * Lines of one file descriptor in constant memory; a line longer than the
 * buffer is judged by its first READ_MAX bytes, the rest skipped. stdout
 * is flushed before every read(2), so verdicts keep up with slow input.
 */
struct reader {
	int    fd;
	char  *buf;
	size_t start, end;
	bool   eof, error, skipping;
};

static bool
reader_line(struct reader *rd, char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(rd->buf + rd->start, '\n', rd->end - rd->start);
		bool full = rd->start == 0 && rd->end == READ_MAX;
		if (nl != NULL || full || (rd->eof && rd->end > rd->start)) {
			size_t stop = nl ? (size_t)(nl - rd->buf) : rd->end;
			bool skip = rd->skipping;
			*line = rd->buf + rd->start;
			*len = stop - rd->start;
			(*line)[*len] = '\0';
			rd->skipping = nl == NULL && !rd->eof;	/* the rest of a long line */
			rd->start = nl ? stop + 1 : rd->end;
			if (!skip)
				return true;
			continue;
		}
		if (rd->eof)
			return false;
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->end -= rd->start;
		rd->start = 0;
		fflush(stdout);
		ssize_t n = read(rd->fd, rd->buf + rd->end, READ_MAX - rd->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rd->error = n < 0;
			rd->eof = true;
			continue;
		}
		rd->end += (size_t)n;
	}
}

struct run {
	const struct verdict_opts *o;
	struct summary    *summary;
	struct verdict_out vo;
	char               out[64 * 1024];
};

static void
print_verdict(const struct verdict *v, void *arg)
{
	struct run *r = arg;
	struct sbuf sb;

	if (r->o->summary) {
		summary_add(r->summary, v);
		return;
	}
	sbuf_init(&sb, r->out, sizeof r->out);
	verdict_format(v, &r->vo, &sb);
	if (sb.overflow) {	/* cannot happen with the caps; never half a line */
		sbuf_init(&sb, r->out, sizeof r->out);
		sbuf_puts(&sb, r->o->json ? "{\"error\":\"verdict too long\"}\n"
					  : "error=\"verdict too long\"\n");
	}
	fwrite(sb.buf, 1, sb.len, stdout);
}

/* Every line of fd into the table; false on a read error. */
static bool
feed_fd(struct verdict_table *t, int fd, char *buf)
{
	struct reader rd = { .fd = fd, .buf = buf };
	struct maillog_event *ev = malloc(sizeof *ev);
	char *line;
	size_t len;

	if (ev == NULL)
		return false;
	while (reader_line(&rd, &line, &len)) {
		maillog_classify(line, len, ev);
		verdict_feed(t, ev);
	}
	free(ev);
	return !rd.error;
}

static int
feed_files(struct verdict_table *t, char **files, int nfiles, char *buf)
{
	int status = 0;

	if (nfiles == 0)
		return feed_fd(t, 0, buf) ? 0 : 3;
	for (int i = 0; i < nfiles; i++) {
		bool is_stdin = strcmp(files[i], "-") == 0;
		int fd = is_stdin ? 0 : open(files[i], O_RDONLY);
		if (fd < 0 || !feed_fd(t, fd, buf)) {
			fprintf(stderr, "smtptrace-explain: cannot read %s: %s\n",
				is_stdin ? "standard input" : files[i], strerror(errno));
			status = 3;
		}
		if (fd > 0)
			close(fd);
	}
	return status;
}

static void
report_stats(const struct verdict_table *t)
{
	struct verdict_stats st;

	verdict_stats(t, &st);
	if (st.settled_early > 0)
		fprintf(stderr, "smtptrace-explain: the pending table was full (%zu "
			"entries): %lu settled early, %lu of them verdicts printed "
			"before their evidence was complete\n",
			st.cap, st.settled_early, st.early_verdicts);
}

int
verdict_run(char **files, int nfiles, const struct verdict_opts *o)
{
	struct run *r = calloc(1, sizeof *r);
	char *buf = malloc(READ_MAX + 1);
	struct verdict_table *t = NULL;
	int status = 3;

	if (r == NULL || buf == NULL || (o->summary && (r->summary = summary_create()) == NULL) ||
	    (t = verdict_table_create(o->cap, o->window, print_verdict, r)) == NULL) {
		fputs("smtptrace-explain: out of memory\n", stderr);
		goto done;
	}
	r->o = o;
	verdict_out_init(&r->vo, o->json);
	status = feed_files(t, files, nfiles, buf);
	verdict_finish(t);
	if (o->summary) {
		struct sbuf sb;
		sbuf_init(&sb, r->out, sizeof r->out);
		summary_report(r->summary, &sb);
		fwrite(sb.buf, 1, sb.len, stdout);
	}
	report_stats(t);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtptrace-explain: cannot write: %s\n", strerror(errno));
		status = 3;
	}
done:
	verdict_table_free(t);
	if (r != NULL)
		summary_free(r->summary);
	free(r);
	free(buf);
	return status;
}
