// The one translation unit that compiles spm.h's implementation for strata.
#define SPM_IMPLEMENTATION
#include "tokenizer/spm.h"
