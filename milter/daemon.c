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
#include <dirent.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape.h"

static int ready_fd = -1;	/* write end of the pipe to the waiting parent */
static int pid_fd = -1;		/* the locked pid file */
static struct stat socket_made;	/* the socket this process made */
static bool socket_known;

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
	/* groups first, while still root (the user's supplementary groups,
	 * as systemd's User= gives them); then the gid; the uid last */
	if (initgroups(who->name, who->gid) != 0 || setgid(who->gid) != 0 ||
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
daemon_lock_pidfile(const char *path, char *err, size_t errsize)
{
	char line[32] = "";
	struct stat st;

	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, errsize, "cannot open pid file", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errsize, "pid file %s: not a regular file", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t n = pread(fd, line, sizeof line - 1, 0);
		line[n > 0 ? n : 0] = '\0';
		line[strcspn(line, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			snprintf(err, errsize, "pid file %s is locked: smtptrace-milter "
				 "is already running (pid %.20s); stop it first", path,
				 line[0] ? line : "unknown");
		else
			snprintf(err, errsize, "cannot lock pid file %s: %s", path,
				 strerror(e));
		return -1;
	}
	pid_fd = fd;
	return 0;
}

int
daemon_write_pid(char *err, size_t errsize)
{
	char line[32];

	if (pid_fd < 0)
		return 0;
	int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
	if (n < 0 || ftruncate(pid_fd, 0) != 0 ||
	    pwrite(pid_fd, line, (size_t)n, 0) != n || fsync(pid_fd) != 0)
		return fail(err, errsize, "cannot write pid file", "");
	return 0;
}

void
daemon_remove_pidfile(const char *path)
{
	struct stat fst, pst;

	/* only the file still locked here: not one a later instance made */
	if (pid_fd < 0 || fstat(pid_fd, &fst) != 0 || lstat(path, &pst) != 0 ||
	    fst.st_dev != pst.st_dev || fst.st_ino != pst.st_ino)
		return;
	unlink(path);
}

int
daemon_socket_check(const char *path, char *err, size_t errsize)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errsize, "socket path %.100s...: longer than %zu bytes",
			 path, sizeof sun.sun_path - 1);
		return -1;
	}
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : fail(err, errsize, "socket", path);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsize, "socket %s: the file exists and is not a "
			 "socket; not touched", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errsize, "socket", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	if (rc == 0) {
		snprintf(err, errsize, "socket %s is in use: another milter "
			 "answers on it; stop it first", path);
		return -1;
	}
	return 0;	/* stale: nobody listens; libmilter replaces it */
}

void
daemon_socket_created(const char *path)
{
	socket_known = lstat(path, &socket_made) == 0 && S_ISSOCK(socket_made.st_mode);
}

void
daemon_socket_remove(const char *path)
{
	struct stat st;

	if (!socket_known || lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_dev != socket_made.st_dev || st.st_ino != socket_made.st_ino)
		return;
	unlink(path);
	socket_known = false;
}

long
daemon_fd_room(long reserve, long *limit)
{
	struct rlimit rl;
	long open_now = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return *limit = -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		while (readdir(d) != NULL)
			open_now++;
		closedir(d);
		open_now -= 3;	/* ".", ".." and the directory's own */
	}
	*limit = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
	if (*limit < 0)
		return -1;
	return *limit - open_now - reserve;
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
