# Cortex-M4 (Thumb-2), bare metal: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-cortex-m4.cmake
# Compiler: arm-none-eabi-gcc (Debian gcc-arm-none-eabi; scripts/deps.sh footprint).
# No FPU flags: the core has no floating point.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb")
# no startup files or linker script to link a test program with: check a static library
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
