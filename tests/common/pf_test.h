/* A minimal test harness for plain C test programs run by CTest.
 * CHECK records a failure and goes on; REQUIRE stops the test case.
 * Each program ends with PF_TEST_MAIN-style summary "N passed, N failed". */
#ifndef PEERFLASH_TEST_H
#define PEERFLASH_TEST_H

#include <stdio.h>
#include <string.h>

static int pf_test_passed, pf_test_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            pf_test_passed++;                                                       \
        } else {                                                                    \
            pf_test_failed++;                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                                              \
    do {                                                                                            \
        long long pf_a_ = (long long)(a), pf_b_ = (long long)(b);                                   \
        if (pf_a_ == pf_b_) {                                                                       \
            pf_test_passed++;                                                                       \
        } else {                                                                                    \
            pf_test_failed++;                                                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, \
                    pf_a_, pf_b_);                                                                  \
        }                                                                                           \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                                 \
    do {                                                                                                \
        const char *pf_h_ = (hay), *pf_n_ = (needle);                                                   \
        if (pf_h_ && strstr(pf_h_, pf_n_)) {                                                            \
            pf_test_passed++;                                                                           \
        } else {                                                                                        \
            pf_test_failed++;                                                                           \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, pf_h_ ? pf_h_ : "(null)", \
                    pf_n_);                                                                             \
        }                                                                                               \
    } while (0)

#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            pf_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond); \
            return;                                                                   \
        }                                                                             \
        pf_test_passed++;                                                             \
    } while (0)

#define RUN(test)                       \
    do {                                \
        fprintf(stderr, "- %s\n", #test); \
        test();                         \
    } while (0)

static inline int pf_test_summary(void)
{
    printf("%d passed, %d failed\n", pf_test_passed, pf_test_failed);
    return pf_test_failed ? 1 : 0;
}

#endif
