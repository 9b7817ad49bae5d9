# WinRM client tests: transport against misbehaving servers, TLS, and end-to-end runs (library and CLI)
# against winhost-sim, including replays of the recorded pypsrp transcripts.
find_package(yaml-cpp REQUIRED)
add_executable(winrm_client_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/transport_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/client_sim_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/client_replay_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/psrp_wsman_replay_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/psrp_wsman_sim_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/winrs_test.cpp)
target_link_libraries(winrm_client_tests PRIVATE wincert_winrm wincert_psrp_wsman yaml-cpp GTest::gtest_main wincert_warnings)
target_link_libraries(winrm_client_tests PRIVATE wincert_test_matchers GTest::gmock)
wincert_asio_coroutines(winrm_client_tests)
# The CLI is ours: build it with the tests. winhost-sim is another module's target: the end-to-end tests
# skip (with a reason) when its binary is not there, so a broken sim does not break this build.
add_dependencies(winrm_client_tests wincert-agent)
target_compile_definitions(winrm_client_tests PRIVATE WINCERT_AGENT_BIN="$<TARGET_FILE:wincert-agent>")
if(TARGET winhost-sim)
  target_compile_definitions(winrm_client_tests PRIVATE WINCERT_WINHOST_SIM="$<TARGET_FILE:winhost-sim>")
endif()
gtest_discover_tests(winrm_client_tests TEST_PREFIX "winrm_client." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
