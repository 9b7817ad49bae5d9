# WS-Management protocol layer tests: builders, parsers, faults, CLIXML, on the real recorded fixtures.
find_package(yaml-cpp REQUIRED)
add_executable(winrm_protocol_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/messages_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/pypsrp_transcript_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/clixml_test.cpp)
target_link_libraries(winrm_protocol_tests PRIVATE wincert_winrm yaml-cpp GTest::gtest_main wincert_warnings)
target_link_libraries(winrm_protocol_tests PRIVATE wincert_test_matchers GTest::gmock)
gtest_discover_tests(winrm_protocol_tests TEST_PREFIX "protocol." DISCOVERY_TIMEOUT 60)
