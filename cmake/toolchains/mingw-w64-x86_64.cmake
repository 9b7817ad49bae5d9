# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (g++-mingw-w64-x86-64-posix).
# The POSIX-threads flavour is used because std::thread/std::mutex (Asio, spdlog) need it with GCC 12.
# Everything is linked statically (libgcc, libstdc++, winpthread), so a test .exe runs under Wine
# without hunting for DLLs. Tests run through Wine: ctest calls CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_SYSTEM_VERSION 10.0)

set(WINCERT_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${WINCERT_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${WINCERT_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${WINCERT_MINGW_TRIPLE}-windres)
set(CMAKE_AR ${WINCERT_MINGW_TRIPLE}-gcc-ar-posix CACHE FILEPATH "mingw ar (LTO-aware wrapper)")
set(CMAKE_RANLIB ${WINCERT_MINGW_TRIPLE}-gcc-ranlib-posix CACHE FILEPATH "mingw ranlib")

# Headers and libraries only from the mingw sysroot and our cross-built dependency tree, never from /usr.
if(NOT DEFINED WINCERT_WINDOWS_DEPS_DIR)
  set(WINCERT_WINDOWS_DEPS_DIR "${CMAKE_CURRENT_LIST_DIR}/../../build/windows-deps")
endif()
get_filename_component(WINCERT_WINDOWS_DEPS_DIR "${WINCERT_WINDOWS_DEPS_DIR}" ABSOLUTE)
set(CMAKE_FIND_ROOT_PATH /usr/${WINCERT_MINGW_TRIPLE} ${WINCERT_WINDOWS_DEPS_DIR})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++ -static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++ -static")

# Tests run under Wine in a prefix inside the build tree (never ~/.wine). scripts/build-windows-deps.sh
# creates it beside the other cached dependencies (a fresh wineboot takes up to a minute and 700 MB);
# cmake/wine-run.sh would create it on first use otherwise. gtest_discover_tests lists tests at ctest
# time, so building needs no Wine at all.
if(NOT DEFINED WINCERT_WINEPREFIX)
  set(WINCERT_WINEPREFIX "${WINCERT_WINDOWS_DEPS_DIR}/wineprefix")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/../wine-run.sh;${WINCERT_WINEPREFIX}")
set(CMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE PRE_TEST)
