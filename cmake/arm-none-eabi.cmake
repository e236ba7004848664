# Toolchain for bare-metal Arm Cortex-M with Debian's gcc-arm-none-eabi and
# libnewlib-arm-none-eabi (newlib-nano through --specs=nano.specs).
#   cmake -S firmware -B build/firmware -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake
# The CPU (-mcpu) is chosen per target in firmware/CMakeLists.txt, because one
# build produces the core for several parts (Cortex-M0+ and Cortex-M3).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(PF_CROSS arm-none-eabi-)
find_program(CMAKE_C_COMPILER ${PF_CROSS}gcc REQUIRED)
find_program(CMAKE_ASM_COMPILER ${PF_CROSS}gcc REQUIRED)
find_program(CMAKE_AR ${PF_CROSS}ar REQUIRED)
find_program(CMAKE_RANLIB ${PF_CROSS}ranlib REQUIRED)
find_program(CMAKE_OBJCOPY ${PF_CROSS}objcopy REQUIRED)
find_program(PF_SIZE ${PF_CROSS}size REQUIRED)
find_program(PF_NM ${PF_CROSS}nm REQUIRED)
find_program(PF_OBJDUMP ${PF_CROSS}objdump REQUIRED)

# No host executables can run: try_compile builds a static library instead.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_EXECUTABLE_SUFFIX .elf)

# Every object is its own section so --gc-sections keeps only what is used.
set(CMAKE_C_FLAGS_INIT "-mthumb -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "-mthumb")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-mthumb -Wl,--gc-sections --specs=nano.specs")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
