# Fuzzer for the certstore parsers: PKCS#12 (with low iteration limits, so no input can hang it), X.509, CSR.
add_executable(fuzz_pkcs12_x509 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_pkcs12_x509.cpp)
target_link_libraries(fuzz_pkcs12_x509 PRIVATE wincert_certstore wincert_warnings)
target_compile_options(fuzz_pkcs12_x509 PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_options(fuzz_pkcs12_x509 PRIVATE -fsanitize=fuzzer,address,undefined)
