# `wincert-agent doctor`: configuration, Command (DNS, TCP, TLS, credentials) and WinRM checks. Uses the
# daemon's configuration and Orchestrators API client and the store sessions' WinRM construction.
set(WINCERT_AGENT_DOCTOR_SOURCES ${CMAKE_CURRENT_LIST_DIR}/doctor.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_DOCTOR_SOURCES})
# GCC 12 false positives on Boost.Asio coroutine code (see winrm/client.cmake).
set_source_files_properties(${WINCERT_AGENT_DOCTOR_SOURCES}
  PROPERTIES COMPILE_OPTIONS "-Wno-null-dereference;-Wno-mismatched-new-delete")
