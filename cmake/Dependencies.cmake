# Every third-party library comes from a Debian package (scripts/setup.sh installs them).
if(WIN32)
  include(windows_deps)  # the mingw-w64 build: cross-built and header-only libraries (same target names)
  return()
endif()
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.81 EXACT REQUIRED)   # Asio and Beast are header-only
find_package(nlohmann_json REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PUGIXML REQUIRED IMPORTED_TARGET pugixml)
find_package(SQLite3 3.40 REQUIRED)  # command-sim's state (sim/command, a Linux program only)

# Asio: no deprecated API, and no Boost.System library needed.
add_library(wincert_asio INTERFACE)
target_link_libraries(wincert_asio INTERFACE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
target_compile_definitions(wincert_asio INTERFACE BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)

if(WINCERT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(WINCERT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()
