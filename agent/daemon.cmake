# The long-running agent: configuration, the Orchestrators API client (HTTP, auth), schedules, the
# durable outbox, the scheduler, the run loop and the `run` subcommand.
set(WINCERT_AGENT_DAEMON_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_http.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/schedule.cpp
  ${CMAKE_CURRENT_LIST_DIR}/outbox.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_timetable.cpp
  ${CMAKE_CURRENT_LIST_DIR}/task_group.cpp
  ${CMAKE_CURRENT_LIST_DIR}/command_session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/result_sink.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_types.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_certificate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/host_change_log.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_loop.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_deadline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/run_cli.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_DAEMON_SOURCES})
target_link_libraries(wincert_agent_lib PUBLIC wincert_common wincert_http wincert_tls wincert_asio OpenSSL::SSL)
wincert_asio_coroutines(wincert_agent_lib SOURCES ${WINCERT_AGENT_DAEMON_SOURCES})
