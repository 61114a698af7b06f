# ESP8266 (Xtensa LX106), bare metal: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-xtensa-lx106.cmake
# Compiler: xtensa-lx106-elf-gcc (Debian gcc-xtensa-lx106; scripts/deps.sh footprint).
# Literals go into the text sections, as the ESP8266 SDKs compile (code in IRAM/flash
# cache, far calls through -mlongcalls).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR xtensa)
set(CMAKE_C_COMPILER xtensa-lx106-elf-gcc)
set(CMAKE_C_FLAGS_INIT "-mlongcalls -mtext-section-literals")
# no C library or startup files to link a test program with: check a static library
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
