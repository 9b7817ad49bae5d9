# Kerberos (GSSAPI) seal/unseal throughput and handshake cost against a temporary real KDC.
# The KDC fixture lives with the tests; without them there is nothing to run against.
if(TARGET wincert_test_krb5_kdc AND TARGET wincert_gssapi)
  add_executable(kerberos_bench ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_bench.cpp)
  target_link_libraries(kerberos_bench PRIVATE wincert_gssapi wincert_test_krb5_kdc benchmark::benchmark
    wincert_warnings)
endif()
