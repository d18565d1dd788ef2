/*
 * NAME
 *	failalloc - an LD_PRELOAD shim that makes allocations fail on cue
 * SYNOPSIS
 *	LD_PRELOAD=build/tests/faults/failalloc.so \
 *	FAILALLOC_TRIGGER=/tmp/x/oom [FAILALLOC_SCOPE=main|all] \
 *	[FAILALLOC_COUNT=/tmp/x/oom.count] smtptrace-milter -f ...
 * DESCRIPTION
 *	While the file named by $FAILALLOC_TRIGGER exists, malloc, calloc and
 *	realloc return NULL with errno ENOMEM. The file's content picks which
 *	of the three fail: any of the words "malloc", "calloc", "realloc";
 *	empty means all three. By default (FAILALLOC_SCOPE=main) only calls
 *	made directly from the main program's own code fail: in the milter
 *	that is smtptrace's code (a session at negotiate, the stall registry,
 *	the /metrics and /transactions bodies), never libmilter's, libc's or
 *	libmicrohttpd's. FAILALLOC_SCOPE=all fails every caller.
 *
 *	Each injected failure adds one to a count; with $FAILALLOC_COUNT set,
 *	that file is rewritten with the count after each one.
 *
 *	The production code is not touched: the shim interposes the three
 *	functions and hands everything else to glibc's own __libc_* entries
 *	(so no dlsym, which itself allocates). free is not interposed.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

enum { FAIL_MALLOC = 1, FAIL_CALLOC = 2, FAIL_REALLOC = 4 };

#define MAIN_RANGES 8

static const char *trigger;
static const char *count_path;
static bool scope_all;
static uintptr_t lo[MAIN_RANGES], hi[MAIN_RANGES];
static int nranges;
static atomic_ulong injected;

/* The executable segments of the main program (the first object listed). */
static int
find_main(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (int i = 0; i < info->dlpi_phnum && nranges < MAIN_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			lo[nranges] = info->dlpi_addr + ph->p_vaddr;
			hi[nranges] = lo[nranges] + ph->p_memsz;
			nranges++;
		}
	}
	return 1;	/* the first object only */
}

__attribute__((constructor)) static void
failalloc_init(void)
{
	const char *scope = getenv("FAILALLOC_SCOPE");

	count_path = getenv("FAILALLOC_COUNT");
	scope_all = scope != NULL && strcmp(scope, "all") == 0;
	dl_iterate_phdr(find_main, NULL);
	trigger = getenv("FAILALLOC_TRIGGER");	/* last: armed once all is set */
}

static bool
from_main(const void *caller)
{
	uintptr_t a = (uintptr_t)caller;

	if (scope_all)
		return true;
	for (int i = 0; i < nranges; i++)
		if (a >= lo[i] && a < hi[i])
			return true;
	return false;
}

/* Which functions fail now: 0 while the trigger file is absent. No allocation here. */
static int
armed(void)
{
	char buf[128];
	int mask = 0;

	if (trigger == NULL)
		return 0;
	int fd = open(trigger, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (strstr(buf, "malloc") != NULL)
		mask |= FAIL_MALLOC;
	if (strstr(buf, "calloc") != NULL)
		mask |= FAIL_CALLOC;
	if (strstr(buf, "realloc") != NULL)
		mask |= FAIL_REALLOC;
	return mask != 0 ? mask : FAIL_MALLOC | FAIL_CALLOC | FAIL_REALLOC;
}

static void
note_failure(void)
{
	static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
	char text[32];

	atomic_fetch_add(&injected, 1);
	if (count_path == NULL)
		return;
	/* under a lock, the count as it is now: two threads failing at once
	 * must not leave the smaller count in the file */
	pthread_mutex_lock(&file_lock);
	int len = snprintf(text, sizeof text, "%lu\n", atomic_load(&injected));
	int fd = open(count_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, text, (size_t)len) < 0)
			(void)0;	/* a count is best effort */
		close(fd);
	}
	pthread_mutex_unlock(&file_lock);
}

static bool
should_fail(int which, const void *caller)
{
	if (trigger == NULL || !from_main(caller) || !(armed() & which))
		return false;
	note_failure();
	return true;
}

void *
malloc(size_t size)
{
	if (should_fail(FAIL_MALLOC, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
	if (should_fail(FAIL_CALLOC, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t size)
{
	if (should_fail(FAIL_REALLOC, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, size);
}
