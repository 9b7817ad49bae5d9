# ---- ntlm: native NTLM, channel binding, message encryption framing ----------------------------------
find_package(PkgConfig REQUIRED)
pkg_check_modules(NTLM_TEST_GSSAPI REQUIRED IMPORTED_TARGET krb5-gssapi)
add_executable(winrm_ntlm_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_crypto_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_messages_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_channel_binding_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/encryption_test.cpp)
target_link_libraries(winrm_ntlm_tests PRIVATE wincert_winrm_ntlm GTest::gtest_main wincert_warnings)
target_link_libraries(winrm_ntlm_tests PRIVATE wincert_test_matchers GTest::gmock)
gtest_discover_tests(winrm_ntlm_tests DISCOVERY_TIMEOUT 60)
# gss-ntlmssp as an independent in-process acceptor (its own binary: it sets NTLM_USER_FILE for the process).
add_executable(winrm_ntlm_gss_tests ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_gss_test.cpp)
target_link_libraries(winrm_ntlm_gss_tests PRIVATE wincert_winrm_ntlm PkgConfig::NTLM_TEST_GSSAPI GTest::gtest_main
  wincert_warnings)
target_link_libraries(winrm_ntlm_gss_tests PRIVATE wincert_test_matchers GTest::gmock)
gtest_discover_tests(winrm_ntlm_gss_tests DISCOVERY_TIMEOUT 60)
# ---- end ntlm ------------------------------------------------------------------------------------------
# ---- kerberos: GSSAPI (MIT) client/acceptor against a real KDC (tests/support/krb5_kdc) --------------
pkg_check_modules(KERBEROS_TEST_KRB5 REQUIRED IMPORTED_TARGET krb5-gssapi krb5)
add_executable(winrm_kerberos_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_names_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_kdc_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_context_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_sealing_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_failure_test.cpp)
target_link_libraries(winrm_kerberos_tests PRIVATE wincert_gssapi wincert_test_krb5_kdc PkgConfig::KERBEROS_TEST_KRB5
  GTest::gtest_main wincert_warnings)
target_link_libraries(winrm_kerberos_tests PRIVATE wincert_test_matchers GTest::gmock)
# Each test starts its own realm (kdb5_util + kadmin.local + krb5kdc): allow for a loaded 2-core box.
set(KERBEROS_TEST_ENV "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/support/lsan_gssapi.supp")
gtest_discover_tests(winrm_kerberos_tests DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 300 LABELS kerberos ENVIRONMENT "${KERBEROS_TEST_ENV}")
# The same contexts through the multipart/encrypted framing (encryption.cpp lives in wincert_winrm_ntlm);
# a separate binary so the core Kerberos tests do not depend on the framing code.
add_executable(winrm_kerberos_framing_tests ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_framing_test.cpp)
target_link_libraries(winrm_kerberos_framing_tests PRIVATE wincert_gssapi wincert_winrm_ntlm wincert_test_krb5_kdc OpenSSL::Crypto
  GTest::gtest_main wincert_test_matchers GTest::gmock wincert_warnings)
gtest_discover_tests(winrm_kerberos_framing_tests DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 300 LABELS kerberos ENVIRONMENT "${KERBEROS_TEST_ENV}")
# ---- end kerberos --------------------------------------------------------------------------------------
