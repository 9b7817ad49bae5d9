# Native NTLM session security and message encryption framing throughput.
add_executable(auth_bench ${CMAKE_CURRENT_SOURCE_DIR}/auth_bench.cpp)
target_link_libraries(auth_bench PRIVATE wincert_winrm_ntlm benchmark::benchmark wincert_warnings)
