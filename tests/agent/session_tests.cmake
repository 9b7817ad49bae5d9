# Store sessions over WinRM and `wincert-agent replay`: unit tests of the overrides and the local CA,
# the session factory in-process against a winhost-sim child, and replay as a process on the fixture jobs
# of ../shared/fixtures/jobs (placeholders overridden with --set) against a winhost-sim child.
if(TARGET wincert_agent_lib AND TARGET wincert-agent AND TARGET winhost-sim)
  set(WINCERT_AGENT_SESSION_TEST_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/session_test_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/store_sessions_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/job_retry_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/replay_unit_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/replay_test.cpp)
  add_executable(agent_session_tests
    ${WINCERT_AGENT_SESSION_TEST_SOURCES}
    # Real keys, certificates and PFX files made with OpenSSL (shared with the winhost model tests).
    ${PROJECT_SOURCE_DIR}/tests/sim/model_test_support.cpp)
  target_link_libraries(agent_session_tests PRIVATE wincert_agent_lib winhost_model winhost_sim_lib wincert_certstore
    wincert_jobs OpenSSL::Crypto GTest::gtest_main wincert_warnings)
  add_dependencies(agent_session_tests winhost-sim wincert-agent)
  target_compile_definitions(agent_session_tests PRIVATE
    WINCERT_CERTSTORE_SCRIPT_DIR="${PROJECT_SOURCE_DIR}/certstore/scripts"
    WINCERT_MODEL_EXAMPLE="${PROJECT_SOURCE_DIR}/sim/winhost/model/example-model.json"
    WINCERT_WINHOST_SIM="$<TARGET_FILE:winhost-sim>"
    WINCERT_AGENT_BINARY="$<TARGET_FILE:wincert-agent>")
  wincert_asio_coroutines(agent_session_tests SOURCES ${WINCERT_AGENT_SESSION_TEST_SOURCES})
  gtest_discover_tests(agent_session_tests TEST_PREFIX "agent_session." DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT 300 LABELS agent)
endif()

# PsrpScriptRunner against a real pwsh -s through the remote backend (SKIPPED without pwsh, FAILED under CI=true).
if(TARGET wincert_agent_lib)
  add_executable(agent_psrp_runner_tests ${CMAKE_CURRENT_LIST_DIR}/psrp_script_runner_test.cpp)
  target_link_libraries(agent_psrp_runner_tests PRIVATE wincert_agent_lib wincert_test_matchers yaml-cpp
    GTest::gmock GTest::gtest_main wincert_warnings)
  target_compile_definitions(agent_psrp_runner_tests PRIVATE
    WINCERT_PSRP_PWSH="${WINCERT_PWSH}"
    WINCERT_PSRP_TOOLS_PWSH="${PROJECT_SOURCE_DIR}/build/tools/pwsh/pwsh")
  wincert_asio_coroutines(agent_psrp_runner_tests)
  gtest_discover_tests(agent_psrp_runner_tests TEST_PREFIX "agent_psrp." DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT 300 LABELS "agent;powershell")
endif()
