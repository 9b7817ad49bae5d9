if(WINCERT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
# libFuzzer builds (preset "fuzz", clang): every library is instrumented for coverage and checked by ASan/UBSan;
# only the fuzz_* executables add -fsanitize=fuzzer, which brings libFuzzer's main().
if(WINCERT_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WINCERT_BUILD_FUZZERS needs clang++ (use the \"fuzz\" preset)")
  endif()
  # -fno-sanitize=function: clang 14 fails on C++20 coroutines (Asio) with "Cannot represent a difference
  # across sections" when that UBSan check is on.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
