#include "kernels.h"

int64_t sluice_kernels_abi(void) { return SLUICE_KERNELS_ABI; }
