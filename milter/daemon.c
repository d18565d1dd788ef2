/*
 * NAME
 *	daemon - start-up chores of a Unix daemon: user, pid file, detaching
 * DESCRIPTION
 *	See daemon.h. Single-threaded start-up code.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"

static int ready_fd = -1;	/* write end of the pipe to the waiting parent */

static int
fail(char *err, size_t errsize, const char *what, const char *arg)
{
	snprintf(err, errsize, "%s %s: %s", what, arg, strerror(errno));
	return -1;
}

int
daemon_lookup_user(const char *spec, struct daemon_user *who, char *err,
		   size_t errsize)
{
	char buf[sizeof who->name];
	const char *group = NULL;

	text_copy(buf, sizeof buf, spec);
	char *colon = strchr(buf, ':');
	if (colon != NULL) {
		*colon = '\0';
		group = colon + 1;
	}
	errno = 0;
	struct passwd *pw = getpwnam(buf);
	if (pw == NULL) {
		snprintf(err, errsize, "no such user: %s", buf);
		return -1;
	}
	who->uid = pw->pw_uid;
	who->gid = pw->pw_gid;
	text_copy(who->name, sizeof who->name, buf);
	if (group != NULL && *group != '\0') {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(err, errsize, "no such group: %s", group);
			return -1;
		}
		who->gid = gr->gr_gid;
	}
	return 0;
}

int
daemon_drop_privileges(const struct daemon_user *who, char *err, size_t errsize)
{
	if (getuid() == who->uid && geteuid() == who->uid &&
	    getgid() == who->gid)
		return 0;
	/* groups first, while still root; then the gid; the uid last */
	if (setgroups(1, &who->gid) != 0 || setgid(who->gid) != 0 ||
	    setuid(who->uid) != 0)
		return fail(err, errsize, "cannot become user", who->name);
	if (setuid(0) == 0) {
		snprintf(err, errsize, "could regain root after becoming %s", who->name);
		return -1;
	}
	return 0;
}

int
daemon_chown(const char *path, const struct daemon_user *who, char *err,
	     size_t errsize)
{
	if (fchownat(AT_FDCWD, path, who->uid, who->gid, AT_SYMLINK_NOFOLLOW) != 0)
		return fail(err, errsize, "cannot chown", path);
	return 0;
}

int
daemon_write_pidfile(const char *path, char *err, size_t errsize)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	char line[32];

	if (fd < 0)
		return fail(err, errsize, "cannot write pid file", path);
	int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
	if (n < 0 || write(fd, line, (size_t)n) != n) {
		close(fd);
		return fail(err, errsize, "cannot write pid file", path);
	}
	if (close(fd) != 0)
		return fail(err, errsize, "cannot write pid file", path);
	return 0;
}

int
daemon_detach(char *err, size_t errsize)
{
	int fds[2];

	if (pipe(fds) != 0)
		return fail(err, errsize, "cannot detach:", "pipe");
	pid_t pid = fork();
	if (pid < 0)
		return fail(err, errsize, "cannot detach:", "fork");
	if (pid > 0) {
		/* the parent: exit with the child's start-up status */
		unsigned char status = 1;
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(fds[0]);
	ready_fd = fds[1];
	if (setsid() < 0 || chdir("/") != 0)
		return fail(err, errsize, "cannot detach:", "setsid");
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		/* stderr stays until daemon_ready: start-up errors still show */
		if (fd > 2)
			close(fd);
	}
	return 0;
}

void
daemon_ready(int status)
{
	unsigned char byte = status == 0 ? 0 : 1;

	if (ready_fd < 0)
		return;
	if (write(ready_fd, &byte, 1) != 1) {
		/* the parent is gone: nobody to tell */
	}
	close(ready_fd);
	ready_fd = -1;
	int fd = open("/dev/null", O_WRONLY);
	if (fd >= 0) {
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}
