# The metrics registry, the agent's metric families and the /metrics, /healthz, /readyz listener.
set(WINCERT_AGENT_METRICS_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/registry.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_metrics.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_listener.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_METRICS_SOURCES})
# GCC 12 false positives on Boost.Asio coroutine code (see winrm/client.cmake).
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/http_listener.cpp
  PROPERTIES COMPILE_OPTIONS "-Wno-null-dereference;-Wno-mismatched-new-delete")
