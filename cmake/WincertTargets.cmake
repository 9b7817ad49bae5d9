# Target helpers shared by every directory (included once from the top-level CMakeLists.txt).
include_guard(GLOBAL)

# The one workaround for GCC 12's false positives on Boost.Asio coroutine code at -O2:
#   -Wmismatched-new-delete on awaitable frames (GCC bug 109224: Asio's recycling allocator pairs its own
#     operator new/delete), and
#   -Wnull-dereference inside the inlined scheduler (scheduler.ipp), io_context's executor comparison and
#     shared_ptr.
# Only GCC (native and MinGW) needs it; the options come after wincert_warnings' on the command line, so
# they win there and nowhere else.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(WINCERT_ASIO_COROUTINE_WORKAROUND -Wno-mismatched-new-delete -Wno-null-dereference)
else()
  set(WINCERT_ASIO_COROUTINE_WORKAROUND)
endif()
add_library(wincert_asio_coroutine_workaround INTERFACE)
target_compile_options(wincert_asio_coroutine_workaround INTERFACE ${WINCERT_ASIO_COROUTINE_WORKAROUND})

# wincert_asio_coroutines(<target> [SOURCES <file>...])
#   Marks code that uses Asio coroutines. Without SOURCES the whole target gets the workaround; with
#   SOURCES only those files of the target do (its other files keep every warning). Call it after the
#   target links wincert_warnings.
function(wincert_asio_coroutines target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "wincert_asio_coroutines(${target}): unexpected arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    # An interface library linked after wincert_warnings: its options follow the warning options.
    target_link_libraries(${target} PRIVATE wincert_asio_coroutine_workaround)
    return()
  endif()
  # Source options come after every target-level option on the command line.
  set_property(SOURCE ${arg_SOURCES} TARGET_DIRECTORY ${target} APPEND PROPERTY COMPILE_OPTIONS
               ${WINCERT_ASIO_COROUTINE_WORKAROUND})
endfunction()
