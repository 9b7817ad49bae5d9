# WinRM client: endpoint, HTTP auth seam (Basic), transport, WinRS session, PowerShell runner.
set(WINCERT_CLIENT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/endpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transport.cpp
  ${CMAKE_CURRENT_LIST_DIR}/winrs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/powershell.cpp)
target_sources(wincert_winrm PRIVATE ${WINCERT_CLIENT_SOURCES})
# GCC 12 false positives on Boost.Asio coroutine code at -O2: -Wnull-dereference inside the inlined
# scheduler (scheduler.ipp) and -Wmismatched-new-delete on awaitable frames (GCC bug 109224).
set(WINCERT_ASIO_WARNING_WORKAROUNDS -Wno-null-dereference -Wno-mismatched-new-delete)
set_source_files_properties(${WINCERT_CLIENT_SOURCES} PROPERTIES COMPILE_OPTIONS "${WINCERT_ASIO_WARNING_WORKAROUNDS}")
