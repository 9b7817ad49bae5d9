# Third-party libraries of the Windows (mingw-w64) build, from the tree scripts/build-windows-deps.sh
# fills. It defines the same targets Dependencies.cmake finds on Linux (OpenSSL::Crypto, Boost::headers,
# spdlog::spdlog, ...), so the modules' CMakeLists stay platform-neutral:
#   - OpenSSL: static libraries cross-built from Debian's source package;
#   - googletest: cross-built from /usr/src/googletest (its installed CMake package);
#   - pugixml: a static library cross-built from Debian's source package (PkgConfig::PUGIXML, as on Linux);
#   - Boost.Asio/Beast, nlohmann/json, CLI11, spdlog and fmt: header-only, from a directory of symlinks to
#     just those Debian headers (spdlog and fmt in their header-only modes).
set(WINCERT_WINDOWS_DEPS_DIR "${PROJECT_SOURCE_DIR}/build/windows-deps" CACHE PATH
    "Dependency tree of the Windows build (scripts/build-windows-deps.sh)")
set(wincert_deps "${WINCERT_WINDOWS_DEPS_DIR}")
foreach(marker openssl/.installed googletest/.installed pugixml/.installed include-host/boost)
  if(NOT EXISTS "${wincert_deps}/${marker}")
    message(FATAL_ERROR "${wincert_deps}/${marker} is missing: run scripts/build-windows-deps.sh first "
                        "(it cross-builds OpenSSL, googletest and pugixml once and caches them)")
  endif()
endforeach()

# Windows 10 API level; no min/max macros from windows.h.
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00 NOMINMAX WIN32_LEAN_AND_MEAN)

# Every C++ file sees winpthreads first. Boost.Asio picks its internal thread type by whether
# _POSIX_THREADS is defined, and with the posix thread model that depends on whether a libstdc++ header
# pulled in <pthread.h> before Asio: files disagreed about the layout of win_iocp_io_context (an ODR
# violation), so an io_context's shutdown skipped joining its timer thread, which then wrote into freed
# memory. One include order for all files makes Asio's choice the same everywhere
# (tests/common/asio_threading_test.cpp checks it).
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:SHELL:-include pthread.h>")

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# Imported targets' include directories are SYSTEM: third-party warnings stay out of -Werror builds.
set(wincert_host_headers "${wincert_deps}/include-host")

add_library(OpenSSL::Crypto STATIC IMPORTED)
set_target_properties(OpenSSL::Crypto PROPERTIES
  IMPORTED_LOCATION "${wincert_deps}/openssl/lib/libcrypto.a"
  INTERFACE_INCLUDE_DIRECTORIES "${wincert_deps}/openssl/include"
  # What OpenSSL's mingw64 target links against (Configurations/10-main.conf ex_libs).
  INTERFACE_LINK_LIBRARIES "ws2_32;gdi32;crypt32;advapi32;user32")
add_library(OpenSSL::SSL STATIC IMPORTED)
set_target_properties(OpenSSL::SSL PROPERTIES
  IMPORTED_LOCATION "${wincert_deps}/openssl/lib/libssl.a"
  INTERFACE_LINK_LIBRARIES OpenSSL::Crypto)
file(READ "${wincert_deps}/openssl/.installed" wincert_openssl_version)
string(STRIP "${wincert_openssl_version}" wincert_openssl_version)
message(STATUS "Windows deps: OpenSSL ${wincert_openssl_version} (mingw64, static) from ${wincert_deps}")

# The name pkg_check_modules(PUGIXML ... IMPORTED_TARGET) gives it on Linux.
add_library(PkgConfig::PUGIXML STATIC IMPORTED)
set_target_properties(PkgConfig::PUGIXML PROPERTIES
  IMPORTED_LOCATION "${wincert_deps}/pugixml/lib/libpugixml.a"
  INTERFACE_INCLUDE_DIRECTORIES "${wincert_deps}/pugixml/include")
file(READ "${wincert_deps}/pugixml/.installed" wincert_pugixml_version)
string(STRIP "${wincert_pugixml_version}" wincert_pugixml_version)
message(STATUS "Windows deps: pugixml ${wincert_pugixml_version} (mingw64, static) from ${wincert_deps}")

add_library(Boost::headers INTERFACE IMPORTED)
set_target_properties(Boost::headers PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${wincert_host_headers}"
  INTERFACE_COMPILE_DEFINITIONS "BOOST_ALL_NO_LIB")
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${wincert_host_headers}")
add_library(CLI11::CLI11 INTERFACE IMPORTED)
set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${wincert_host_headers}")
add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${wincert_host_headers}"
  INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY")
add_library(spdlog::spdlog INTERFACE IMPORTED)
set_target_properties(spdlog::spdlog PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${wincert_host_headers}"
  INTERFACE_COMPILE_DEFINITIONS "SPDLOG_HEADER_ONLY;SPDLOG_FMT_EXTERNAL"
  INTERFACE_LINK_LIBRARIES "fmt::fmt;Threads::Threads")

# Asio: as on Linux (no deprecated API, no Boost.System library), plus Winsock.
add_library(wincert_asio INTERFACE)
target_link_libraries(wincert_asio INTERFACE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto ws2_32 mswsock)
target_compile_definitions(wincert_asio INTERFACE BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)

if(WINCERT_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG PATHS "${wincert_deps}/googletest" NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
endif()
if(WINCERT_BUILD_BENCH)
  message(STATUS "Windows build: benchmarks are not built (Google Benchmark is not cross-built)")
  set(WINCERT_BUILD_BENCH OFF CACHE BOOL "Build the benchmarks" FORCE)
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()
