# Fuzzer for the outbox entry reader (agent/outbox.cpp); seeds: tests/fuzz/corpus/outbox (real entries).
add_executable(fuzz_outbox_entry ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_outbox_entry.cpp)
target_link_libraries(fuzz_outbox_entry PRIVATE wincert_agent_lib wincert_warnings)
target_compile_options(fuzz_outbox_entry PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_outbox_entry PRIVATE -fsanitize=fuzzer,address,undefined)
