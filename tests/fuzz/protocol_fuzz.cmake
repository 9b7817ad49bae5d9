# Fuzzers for the WS-Management protocol layer. The fuzz configuration compiles every library with
# -fsanitize=fuzzer-no-link,address,undefined (cmake/Sanitizers.cmake); only these executables link libFuzzer.
foreach(fuzzer fuzz_wsman_response fuzz_clixml)
  add_executable(${fuzzer} ${CMAKE_CURRENT_SOURCE_DIR}/${fuzzer}.cpp)
  target_link_libraries(${fuzzer} PRIVATE wincert_winrm wincert_warnings)
  target_compile_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
