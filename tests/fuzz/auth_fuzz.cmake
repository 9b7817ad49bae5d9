# Fuzzers for native NTLM and the multipart/encrypted framing (same flags as protocol_fuzz.cmake).
foreach(fuzzer fuzz_ntlm_challenge fuzz_multipart)
  add_executable(${fuzzer} ${CMAKE_CURRENT_SOURCE_DIR}/${fuzzer}.cpp)
  target_link_libraries(${fuzzer} PRIVATE wincert_winrm_ntlm wincert_warnings)
  target_compile_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
