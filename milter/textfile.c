/*
 * NAME
 *	textfile - the metrics as a file, for node_exporter's textfile collector
 * DESCRIPTION
 *	See textfile.h. Which thread: its own.
 */
#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "expose.h"
#include "log.h"

/* All of buf to fd; 0, or -1 with errno (EIO for a write that makes no progress). */
static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int
textfile_write(const char *path, struct registry *reg)
{
	char tmp[4096];
	size_t len;
	int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	char *body = expose_metrics(reg, &len);
	if (body == NULL) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(body);
		return -1;
	}
	/* readable by the collector whatever the umask (the unit's is 0007) */
	/* on disk before the rename: a crash must not leave an empty file in
	 * place of the last good one */
	int err = fchmod(fd, 0644) == 0 && write_all(fd, body, len) == 0 &&
		  fsync(fd) == 0 ? 0 : errno;
	free(body);
	/* the descriptor is closed on every path: a full disk must not leak them */
	if (close(fd) != 0 && err == 0)
		err = errno;
	if (err == 0 && rename(tmp, path) != 0)
		err = errno;
	if (err != 0) {
		unlink(tmp);
		errno = err;
		return -1;
	}
	return 0;
}

static void
write_logged(struct textfile *t)
{
	if (textfile_write(t->path, t->reg) == 0) {
		t->last_errno = 0;
		return;
	}
	int err = errno;	/* before syslog can change it */
	if (err != t->last_errno)
		log_msg(LOG_WARNING, "cannot write metrics file %s: %s", t->path,
			strerror(err));
	t->last_errno = err;
}

static void *
textfile_main(void *arg)
{
	struct textfile *t = arg;
	struct timespec at;

	clock_gettime(CLOCK_MONOTONIC, &at);
	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		pthread_mutex_unlock(&t->lock);
		write_logged(t);
		pthread_mutex_lock(&t->lock);
		at.tv_sec += t->interval_s;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (at.tv_sec < now.tv_sec)	/* a slow write: no catching up */
			at.tv_sec = now.tv_sec + t->interval_s;
		while (!t->stopping &&
		       pthread_cond_timedwait(&t->wake, &t->lock, &at) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&t->lock);
	write_logged(t);	/* the last figures before stopping */
	return NULL;
}

int
textfile_start(struct textfile *t, const char *path, int interval_s,
	       struct registry *reg)
{
	pthread_condattr_t attr;

	memset(t, 0, sizeof *t);
	t->path = path;
	t->interval_s = interval_s;
	t->reg = reg;
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&attr) != 0) {
		pthread_mutex_destroy(&t->lock);
		return -1;
	}
	int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
		 pthread_cond_init(&t->wake, &attr) == 0 ? 0 : -1;
	pthread_condattr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_destroy(&t->lock);
		return -1;
	}
	t->running = pthread_create(&t->thread, NULL, textfile_main, t) == 0;
	if (!t->running) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
	}
	return t->running ? 0 : -1;
}

void
textfile_stop(struct textfile *t)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->running = false;
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
}
