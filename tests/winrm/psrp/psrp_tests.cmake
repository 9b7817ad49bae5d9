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
