/* libFuzzer target: S-record reader (see fuzz_text.h for the invariants). */
#define FZ_READER pf_srec
#define FZ_TYPE pf_srec
#include "fuzz_text.h"
