// One kernel family (kernels/<GLU_EMU_FAMILY>.cu) on the host emulator,
// its kernels registered by name for the stand-in driver (driver.cpp,
// GLU_EMU_KERNEL). build.sh compiles this file once per family:
//   -DGLU_EMU_FAMILY='"fused_glu_mma.cu"'
#include "cuda_emu.h"

#ifndef GLU_EMU_FAMILY
#error "define GLU_EMU_FAMILY as the quoted file name of a kernels/*.cu family"
#endif
#include GLU_EMU_FAMILY
