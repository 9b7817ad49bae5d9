# PSRP message layer tests (winrm/psrp): fragments, message headers, CLIXML objects and typed messages in every
# build (the Windows one runs them under Wine); every recorded pypsrp PSRP transcript decoded (read with
# yaml-cpp at test time) in the Linux build.
add_executable(winrm_psrp_tests
  ${CMAKE_CURRENT_LIST_DIR}/fragment_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/message_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/clixml_value_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/messages_test.cpp)
target_link_libraries(winrm_psrp_tests PRIVATE wincert_psrp wincert_test_matchers GTest::gmock GTest::gtest_main
  wincert_warnings)
if(NOT WIN32)
  find_package(yaml-cpp REQUIRED)
  target_sources(winrm_psrp_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/transcript_test.cpp)
  target_link_libraries(winrm_psrp_tests PRIVATE yaml-cpp)
endif()
gtest_discover_tests(winrm_psrp_tests TEST_PREFIX "psrp." DISCOVERY_TIMEOUT 120)

# The message layer against a real PowerShell 7 (`pwsh -s`): psrp_probe builds and decodes the messages, the
# script speaks the OutOfProc lines. pwsh comes from WINCERT_PWSH, build/tools (scripts/setup.sh) or PATH;
# without it the test is skipped (failed under CI=true).
if(NOT WIN32)
  add_executable(psrp_probe ${CMAKE_CURRENT_LIST_DIR}/psrp_probe.cpp)
  target_link_libraries(psrp_probe PRIVATE wincert_psrp wincert_warnings)
  add_test(NAME psrp.pwsh_peer
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/pwsh_peer_test.py --probe $<TARGET_FILE:psrp_probe>
            "--pwsh=${WINCERT_PWSH}" --tools-file ${PROJECT_SOURCE_DIR}/build/tools/powershell-tools.cmake)
  set_tests_properties(psrp.pwsh_peer PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS powershell)
endif()
