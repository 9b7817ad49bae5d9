# `wincert-agent doctor`: configuration, Command (DNS, TCP, TLS, credentials) and WinRM checks. Uses the
# daemon's configuration and Orchestrators API client and the store sessions' WinRM construction.
set(WINCERT_AGENT_DOCTOR_SOURCES ${CMAKE_CURRENT_LIST_DIR}/doctor.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_DOCTOR_SOURCES})
wincert_asio_coroutines(wincert_agent_lib SOURCES ${WINCERT_AGENT_DOCTOR_SOURCES})
