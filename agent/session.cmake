# Store sessions over WinRM (warm per-host connections and shells), the shared WinRM auth/transport
# construction, the ScriptRunner adapters (WinRS, PSRP), and `wincert-agent replay` with its local CA.
set(WINCERT_AGENT_SESSION_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/winrm_auth_factory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/winrm_script_runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/psrp_script_runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wsman_psrp_runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_sessions.cpp
  ${CMAKE_CURRENT_LIST_DIR}/store_session_router.cpp
  ${CMAKE_CURRENT_LIST_DIR}/store_sessions.cpp
  ${CMAKE_CURRENT_LIST_DIR}/local_ca.cpp
  ${CMAKE_CURRENT_LIST_DIR}/replay.cpp)
target_sources(wincert_agent_lib PRIVATE ${WINCERT_AGENT_SESSION_SOURCES})
target_link_libraries(wincert_agent_lib PUBLIC OpenSSL::Crypto)
wincert_asio_coroutines(wincert_agent_lib SOURCES ${WINCERT_AGENT_SESSION_SOURCES})
