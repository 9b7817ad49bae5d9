# Peak memory of taking in a job configuration, before/after the one-parse peer JSON path
# (bench/results/peer_json_memory.md; run under /usr/bin/time -v, not a Google Benchmark).
add_executable(peer_json_memory_bench ${CMAKE_CURRENT_SOURCE_DIR}/peer_json_memory_bench.cpp)
target_link_libraries(peer_json_memory_bench PRIVATE wincert_agent_lib wincert_warnings)
wincert_asio_coroutines(peer_json_memory_bench)
