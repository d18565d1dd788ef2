/*
 * NAME
 *	fuzz_common - failing loudly, reading bytes as values, capped copies
 * DESCRIPTION
 *	See fuzz_common.h.
 */
#include "fuzz_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s:%d: property failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void
fuzz_dump(const char *label, const char *s, size_t len)
{
	fprintf(stderr, "%s (%zu bytes): \"", label, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(stderr, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fputs("\"\n", stderr);
}

void
fz_init(struct fz *f, const uint8_t *data, size_t size)
{
	f->p = data;
	f->n = size;
}

uint8_t
fz_u8(struct fz *f)
{
	if (f->n == 0)
		return 0;
	f->n--;
	return *f->p++;
}

uint16_t
fz_u16(struct fz *f)
{
	uint16_t hi = fz_u8(f);
	return (uint16_t)(hi << 8 | fz_u8(f));
}

uint32_t
fz_u32(struct fz *f)
{
	uint32_t hi = fz_u16(f);
	return hi << 16 | fz_u16(f);
}

uint64_t
fz_u64(struct fz *f)
{
	uint64_t hi = fz_u32(f);
	return hi << 32 | fz_u32(f);
}

bool
fz_bool(struct fz *f)
{
	return fz_u8(f) & 1;
}

uint32_t
fz_below(struct fz *f, uint32_t n)
{
	if (n == 0)
		return 0;
	if (n <= 256)
		return fz_u8(f) % n;
	if (n <= 65536)
		return fz_u16(f) % n;
	return fz_u32(f) % n;
}

size_t
fz_str(struct fz *f, char *buf, size_t cap, size_t maxlen)
{
	size_t want = fz_u8(f);

	/* 0-247: that length; 248-255: a long one, up to maxlen */
	if (want >= 248)
		want = 248 + fz_u16(f) % (maxlen + 1);
	if (want > maxlen)
		want = maxlen;
	if (want > f->n)
		want = f->n;
	if (want >= cap)
		want = cap - 1;
	memcpy(buf, f->p, want);
	buf[want] = '\0';
	f->p += want;
	f->n -= want;
	return strlen(buf);
}

size_t
fz_rest(struct fz *f, const uint8_t **p)
{
	size_t n = f->n;

	*p = f->p;
	f->p += n;
	f->n = 0;
	return n;
}

size_t
capped(const char *v, size_t max, char *out)
{
	size_t mark = sizeof ESCAPE_CUT_MARK - 1;

	if (v == NULL)
		v = "";
	size_t n = strnlen(v, max + 1);
	bool cut = n > max;
	if (cut)
		n = max;
	memcpy(out, v, n);
	if (cut) {
		memcpy(out + n, ESCAPE_CUT_MARK, mark);
		n += mark;
	}
	out[n] = '\0';
	return n;
}

void
fuzz_expect_bytes(const char *file, int line, const char *what,
		  const char *got, size_t got_len, const char *want, size_t want_len)
{
	if (got_len == want_len && memcmp(got, want, got_len) == 0)
		return;
	fuzz_dump("got", got, got_len);
	fuzz_dump("want", want, want_len);
	fuzz_fail(file, line, "got == want", "%s differs", what);
}
