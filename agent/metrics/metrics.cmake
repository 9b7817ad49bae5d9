# The metrics registry, the agent's metric families and the /metrics, /healthz, /readyz listener.
set(WINCERT_AGENT_METRICS_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/registry.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_metrics.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_listener.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_METRICS_SOURCES})
wincert_asio_coroutines(wincert_agent_lib SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_listener.cpp)
