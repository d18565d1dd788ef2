/*
 * NAME
 *	fuzz_common - what every fuzz target shares: failing loudly, reading
 *	the fuzzer's bytes as values, and the capped-copy oracle
 * SYNOPSIS
 *	FUZZ_CHECK(n == want, "got %zu, want %zu", n, want);
 *	struct fz f; fz_init(&f, data, size); n = fz_below(&f, 10);
 *	fz_str(&f, buf, sizeof buf, 300);
 * DESCRIPTION
 *	A failed property prints "file:line: property failed: cond: message"
 *	and calls abort(), which libFuzzer reports as a crash and saves the
 *	input. The reader never fails: past the end of the input every value
 *	is 0 and every string empty, so any byte string is a valid input.
 *
 *	FUZZ_KNOWN_BUGS (0 by default): properties known to fail on the code
 *	today (README.md's table) are compiled but not asserted, so `make
 *	fuzz-check` can stay in `make check`; build with FUZZ_KNOWN_BUGS=1 to
 *	assert them (their reproducers are in tests/fuzz/crashes/).
 */
#ifndef SMTPTRACE_FUZZ_COMMON_H
#define SMTPTRACE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef FUZZ_KNOWN_BUGS
#define FUZZ_KNOWN_BUGS 0
#endif

#define FUZZ_CHECK(cond, ...) do { \
	if (!(cond)) \
		fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
} while (0)

/* A property known to fail today: asserted with FUZZ_KNOWN_BUGS=1. */
#define FUZZ_CHECK_KNOWN(cond, ...) do { \
	if (FUZZ_KNOWN_BUGS && !(cond)) \
		fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/* Print len bytes of s, C-escaped, to stderr (for failure messages). */
void fuzz_dump(const char *label, const char *s, size_t len);

struct fz {
	const uint8_t *p;
	size_t         n;
};

void     fz_init(struct fz *f, const uint8_t *data, size_t size);
uint8_t  fz_u8(struct fz *f);
uint16_t fz_u16(struct fz *f);
uint32_t fz_u32(struct fz *f);
uint64_t fz_u64(struct fz *f);
bool     fz_bool(struct fz *f);
/* A number in [0, n); 0 when n is 0. */
uint32_t fz_below(struct fz *f, uint32_t n);
/*
 * A string of up to maxlen bytes (NUL bytes in the input end it early)
 * into buf (cap bytes, cap > maxlen), NUL-terminated; returns strlen.
 * Lengths favour short strings but reach maxlen.
 */
size_t   fz_str(struct fz *f, char *buf, size_t cap, size_t maxlen);
/* What is left, as bytes. */
size_t   fz_rest(struct fz *f, const uint8_t **p);

/*
 * The documented cap of the renderers and text_copy: the first max bytes
 * of v, and "..." when v was longer. out must hold max + 4 bytes.
 * Returns the length written.
 */
size_t capped(const char *v, size_t max, char *out);

/* Bytes equal, or fail showing both. */
#define FUZZ_EXPECT_BYTES(what, got, got_len, want, want_len) \
	fuzz_expect_bytes(__FILE__, __LINE__, what, got, got_len, want, want_len)
void fuzz_expect_bytes(const char *file, int line, const char *what,
		       const char *got, size_t got_len,
		       const char *want, size_t want_len);

#endif
