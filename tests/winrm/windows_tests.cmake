# The WinRM client's tests in the Windows (mingw) build, run under Wine through ctest's emulator
# (cmake/wine-run.sh). Only tests that need no Linux-only peer: the tests using MIT GSSAPI, gss-ntlmssp, a
# KDC, yaml-cpp (the pypsrp transcripts), winhost-sim as a child process or the Linux agent binary stay in
# the Linux build. The Wine interop test drives the native Linux winhost-sim from a Python script.

# WS-Management protocol layer: builders, parsers, faults, CLIXML on the recorded fixtures.
add_executable(winrm_protocol_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/messages_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/clixml_test.cpp)
target_link_libraries(winrm_protocol_tests PRIVATE wincert_winrm wincert_test_matchers GTest::gtest_main wincert_warnings)
gtest_discover_tests(winrm_protocol_tests TEST_PREFIX "protocol." DISCOVERY_TIMEOUT 120)

# Native NTLM (vectors, messages), channel binding and the multipart/encrypted framing.
add_executable(winrm_ntlm_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_crypto_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_messages_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/ntlm_channel_binding_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/encryption_test.cpp)
target_link_libraries(winrm_ntlm_tests PRIVATE wincert_winrm_ntlm wincert_test_matchers GTest::gtest_main wincert_warnings)
gtest_discover_tests(winrm_ntlm_tests DISCOVERY_TIMEOUT 120)

# Kerberos without a KDC: naming rules, the Wine sealing layout conversion, and SSPI's errors.
add_executable(winrm_kerberos_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/kerberos_names_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sspi_context_test.cpp)
target_link_libraries(winrm_kerberos_tests PRIVATE wincert_winrm wincert_test_matchers GTest::gtest_main wincert_warnings)
gtest_discover_tests(winrm_kerberos_tests DISCOVERY_TIMEOUT 120)

# The transport and WinRS session against in-process servers (loopback sockets, TLS).
add_executable(winrm_client_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/transport_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/winrs_test.cpp)
target_link_libraries(winrm_client_tests PRIVATE wincert_winrm wincert_test_matchers GTest::gtest_main wincert_warnings)
wincert_asio_coroutines(winrm_client_tests)
gtest_discover_tests(winrm_client_tests TEST_PREFIX "winrm_client." DISCOVERY_TIMEOUT 120 PROPERTIES TIMEOUT 300)

# Interop: this Windows client under Wine against the native Linux winhost-sim (Basic over HTTPS, NTLM
# with message encryption over HTTP, PowerShell round trips, Kerberos/Negotiate through SSPI with a real
# MIT KDC). The sim comes from the Linux build; without it the test is skipped (exit code 77), not passed.
set(WINCERT_HOST_BUILD_DIR "${PROJECT_SOURCE_DIR}/build/default" CACHE PATH
    "Linux build tree whose sim/winhost/winhost-sim the Windows interop test runs against")
add_executable(winrm_windows_interop_tests ${CMAKE_CURRENT_SOURCE_DIR}/windows_interop_test.cpp)
target_link_libraries(winrm_windows_interop_tests PRIVATE wincert_winrm wincert_test_matchers GTest::gtest_main wincert_warnings)
wincert_asio_coroutines(winrm_windows_interop_tests)
add_test(NAME winrm_windows_interop
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/windows_interop.py
          --sim ${WINCERT_HOST_BUILD_DIR}/sim/winhost/winhost-sim
          --wine-run ${PROJECT_SOURCE_DIR}/cmake/wine-run.sh --wine-prefix ${WINCERT_WINEPREFIX}
          --test-exe $<TARGET_FILE:winrm_windows_interop_tests>)
set_tests_properties(winrm_windows_interop PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "integration;kerberos")
