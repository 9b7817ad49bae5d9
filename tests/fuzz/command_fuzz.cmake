# Fuzzers for what Command and the managed hosts send: Command's replies, job configurations, script
# output, endpoint URL resolution and schedule strings (scripts/run-fuzzers.sh runs each for a bounded time).
foreach(fuzzer fuzz_command_reply fuzz_job_config fuzz_script_output fuzz_endpoint_url fuzz_schedule)
  add_executable(${fuzzer} ${CMAKE_CURRENT_SOURCE_DIR}/${fuzzer}.cpp)
  target_link_libraries(${fuzzer} PRIVATE wincert_agent_lib wincert_warnings)
  target_compile_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
