# ---- authint: NTLM / Kerberos / Negotiate end to end against winhost-sim's acceptors ------------------
include(${PROJECT_SOURCE_DIR}/sim/winhost/gss_auth.cmake)
add_executable(winrm_auth_e2e_tests ${CMAKE_CURRENT_SOURCE_DIR}/auth_e2e_test.cpp)
target_link_libraries(winrm_auth_e2e_tests PRIVATE wincert_winrm wincert_psrp_wsman winhost_sim_gss_auth wincert_test_krb5_kdc
  PkgConfig::WINHOST_KRB5
  GTest::gtest_main wincert_warnings)
target_link_libraries(winrm_auth_e2e_tests PRIVATE wincert_test_matchers GTest::gmock)
wincert_asio_coroutines(winrm_auth_e2e_tests)
# Each test process starts its own KDC and servers: allow for a loaded 2-core box.
gtest_discover_tests(winrm_auth_e2e_tests TEST_PREFIX "auth_e2e." DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 300 LABELS kerberos
  # gss-ntlmssp's own OpenSSL allocations leak; libcrypto has no frame pointers, so only the slow unwinder
  # reaches gssntlmssp.so for the suppression to match.
  ENVIRONMENT "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/support/lsan_gssapi.supp:fast_unwind_on_malloc=0")
# Processes: winhost-sim (--auth ntlm,kerberos,negotiate,certificate) against an independent client
# (Debian's python3-winrm with requests-ntlm / requests-kerberos) and against our CLI, with a real KDC.
if(TARGET winhost-sim AND TARGET wincert-agent)
  add_test(NAME auth_integration
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/auth_integration_test.py
                   $<TARGET_FILE:winhost-sim> $<TARGET_FILE:wincert-agent>)
  set_tests_properties(auth_integration PROPERTIES TIMEOUT 600 LABELS "integration;kerberos")
endif()
# ---- end authint ----------------------------------------------------------------------------------------
