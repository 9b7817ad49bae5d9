# PSRP message layer tests (winrm/psrp): fragments, message headers, CLIXML objects, typed messages, and every
# recorded pypsrp PSRP transcript decoded (read with yaml-cpp at test time).
find_package(yaml-cpp REQUIRED)
add_executable(winrm_psrp_tests
  ${CMAKE_CURRENT_LIST_DIR}/fragment_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/message_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/clixml_value_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/messages_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transcript_test.cpp)
target_link_libraries(winrm_psrp_tests PRIVATE wincert_psrp yaml-cpp wincert_test_matchers GTest::gmock
  GTest::gtest_main wincert_warnings)
gtest_discover_tests(winrm_psrp_tests TEST_PREFIX "psrp." DISCOVERY_TIMEOUT 60)
