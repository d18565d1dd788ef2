/*
 * Shared by the CUnit suites: registration functions and the assertion
 * helpers that print "got X, want Y" on failure.
 */
#ifndef SMTPTRACE_TESTS_H
#define SMTPTRACE_TESTS_H

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#define EXPECT_STR(got, want) do { \
	const char *g_ = (got), *w_ = (want); \
	if (g_ == NULL || strcmp(g_, w_) != 0) \
		fprintf(stderr, "\n%s:%d: got \"%s\", want \"%s\"\n", \
			__FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
	CU_ASSERT(g_ != NULL && strcmp(g_, w_) == 0); \
} while (0)

#define EXPECT_INT(got, want) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (g_ != w_) \
		fprintf(stderr, "\n%s:%d: %s: got %lld, want %lld\n", \
			__FILE__, __LINE__, #got, g_, w_); \
	CU_ASSERT_EQUAL(g_, w_); \
} while (0)

#define EXPECT_CONTAINS(hay, needle) do { \
	const char *h_ = (hay), *n_ = (needle); \
	if (h_ == NULL || strstr(h_, n_) == NULL) \
		fprintf(stderr, "\n%s:%d: \"%s\" does not contain \"%s\"\n", \
			__FILE__, __LINE__, h_ ? h_ : "(null)", n_); \
	CU_ASSERT(h_ != NULL && strstr(h_, n_) != NULL); \
} while (0)

int suite_escape(void);
int suite_outcome(void);
int suite_render(void);
int suite_config(void);
int suite_callbacks(void);
int suite_codes(void);
int suite_reply(void);
int suite_registry(void);
int suite_live(void);
int suite_metrics(void);
int suite_maillog(void);
int suite_verdict(void);
int suite_logqueue(void);
int suite_top(void);

#endif
