/* CUnit runner: every suite, verbose, exit status 1 on any failure. */
#include <CUnit/Basic.h>

#include "tests.h"

int
main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if (suite_escape() || suite_outcome() || suite_render() ||
	    suite_config() || suite_callbacks() || suite_codes() ||
	    suite_reply() || suite_registry() || suite_live() || suite_metrics() ||
	    suite_maillog() || suite_verdict() || suite_logqueue() ||
	    suite_top()) {
		fprintf(stderr, "cannot register the suites: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() +
			  CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
