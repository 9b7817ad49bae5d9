# Warnings on everywhere; the project builds clean with them.
add_library(wincert_warnings INTERFACE)
target_compile_options(wincert_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wimplicit-fallthrough)
if(WINCERT_WERROR)
  target_compile_options(wincert_warnings INTERFACE -Werror)
endif()
