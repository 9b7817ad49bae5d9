# Authentication (native NTLM), channel binding and WinRM message encryption framing. Pure code (no
# sockets), kept in its own library so its tests build without the transport; wincert_winrm links it.
add_library(wincert_winrm_ntlm STATIC
  ${CMAKE_CURRENT_LIST_DIR}/auth/legacy_crypto.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth/ntlm_messages.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth/ntlm_session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth/ntlm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth/channel_binding.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth/ntlm_http_auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/encryption.cpp)
target_include_directories(wincert_winrm_ntlm PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_winrm_ntlm PUBLIC wincert_common OpenSSL::Crypto PRIVATE wincert_warnings)
target_link_libraries(wincert_winrm PUBLIC wincert_winrm_ntlm)
include(${CMAKE_CURRENT_LIST_DIR}/auth/negotiate.cmake)  # Kerberos/Negotiate HttpAuth (authint)
