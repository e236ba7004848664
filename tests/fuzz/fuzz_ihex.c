/* libFuzzer target: Intel HEX reader (see fuzz_text.h for the invariants). */
#define FZ_READER pf_ihex
#define FZ_TYPE pf_ihex
#include "fuzz_text.h"
