# WinRM client: endpoint, HTTP auth seam (Basic), transport, WinRS session, PowerShell runner.
set(WINCERT_CLIENT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/endpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transport.cpp
  ${CMAKE_CURRENT_LIST_DIR}/winrs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/powershell.cpp)
target_sources(wincert_winrm PRIVATE ${WINCERT_CLIENT_SOURCES})
wincert_asio_coroutines(wincert_winrm SOURCES ${WINCERT_CLIENT_SOURCES})
