# Tests of the long-running agent: configuration, schedules and endpoints, the Orchestrators API
# client against an in-test HTTP server, the outbox, the scheduler and the whole run loop.
set(WINCERT_DAEMON_TEST_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/daemon_test_support.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/schedule_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_client_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/outbox_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_loop_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/doctor_advice_test.cpp)
add_executable(agent_daemon_tests ${WINCERT_DAEMON_TEST_SOURCES})
# tests/support/result_matchers.hpp is header-only and found from the project root (wincert_test_matchers
# is not defined in the Windows build, which also builds these tests).
target_link_libraries(agent_daemon_tests PRIVATE wincert_agent_lib GTest::gmock GTest::gtest_main wincert_warnings)
target_compile_definitions(agent_daemon_tests PRIVATE WINCERT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(agent_daemon_tests TEST_PREFIX "agent.daemon." PROPERTIES TIMEOUT 300 LABELS agent)
wincert_asio_coroutines(agent_daemon_tests)
# The per-job deadline (agent/job_deadline.cpp), on its own: quick to build and run.
add_executable(agent_job_deadline_tests ${CMAKE_CURRENT_LIST_DIR}/job_deadline_test.cpp)
target_link_libraries(agent_job_deadline_tests PRIVATE wincert_agent_lib GTest::gtest_main wincert_warnings)
target_compile_definitions(agent_job_deadline_tests PRIVATE WINCERT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
wincert_asio_coroutines(agent_job_deadline_tests)
gtest_discover_tests(agent_job_deadline_tests TEST_PREFIX "agent.daemon." PROPERTIES TIMEOUT 120 LABELS agent)
# The job timetable (agent/job_timetable.cpp), on its own: no server, no timers.
add_executable(agent_job_timetable_tests ${CMAKE_CURRENT_LIST_DIR}/job_timetable_test.cpp)
target_link_libraries(agent_job_timetable_tests PRIVATE wincert_agent_lib GTest::gtest_main wincert_warnings)
gtest_discover_tests(agent_job_timetable_tests TEST_PREFIX "agent.daemon." PROPERTIES TIMEOUT 60 LABELS agent)
# The agent's parts on their own, against a scripted Command (tests/agent/scripted_command.hpp): the Command
# session, job running and the result sink (agent/command_session.cpp, job_runner.cpp, result_sink.cpp), the
# host-change log, the JobTypeId table and the agent certificate files.
foreach(part IN ITEMS command_session job_runner result_sink host_change_log job_types agent_certificate)
  add_executable(agent_${part}_tests ${CMAKE_CURRENT_LIST_DIR}/${part}_test.cpp
                                     ${CMAKE_CURRENT_LIST_DIR}/daemon_test_support.cpp)
  target_link_libraries(agent_${part}_tests PRIVATE wincert_agent_lib GTest::gmock GTest::gtest_main wincert_warnings)
  target_compile_definitions(agent_${part}_tests PRIVATE WINCERT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  wincert_asio_coroutines(agent_${part}_tests)
  gtest_discover_tests(agent_${part}_tests TEST_PREFIX "agent.daemon." PROPERTIES TIMEOUT 120 LABELS agent)
endforeach()
