# Fuzzers for the PSRP message layer (winrm/psrp): the defragmenter with the message parsers, and the CLIXML
# deserializer with the serializer.
foreach(fuzzer fuzz_psrp_fragments fuzz_psrp_clixml)
  add_executable(${fuzzer} ${CMAKE_CURRENT_SOURCE_DIR}/${fuzzer}.cpp)
  target_link_libraries(${fuzzer} PRIVATE wincert_psrp wincert_warnings)
  target_compile_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${fuzzer} PRIVATE -fsanitize=fuzzer,address,undefined)
endforeach()
