# agent/metrics: the registry and its text format, the agent's families, and the HTTP listener (limits,
# 404/405, /healthz, /readyz) against real sockets on loopback.
set(WINCERT_METRICS_TEST_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/registry_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_listener_test.cpp)
add_executable(agent_metrics_tests ${WINCERT_METRICS_TEST_SOURCES})
target_link_libraries(agent_metrics_tests PRIVATE wincert_agent_lib GTest::gtest_main wincert_warnings)
gtest_discover_tests(agent_metrics_tests TEST_PREFIX "agent.metrics." PROPERTIES TIMEOUT 120 LABELS agent)
wincert_asio_coroutines(agent_metrics_tests SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_listener_test.cpp)
