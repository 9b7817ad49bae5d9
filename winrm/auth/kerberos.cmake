# Kerberos / SPNEGO: the GssContext client (winrm/auth/gssapi_context.hpp) and WinRM message sealing.
#   Linux:   MIT GSSAPI, plus the acceptor that tests and winhost-sim use.
#   Windows: SSPI (secur32), client side only.
# Built as an object library so the Kerberos tests (and the Linux benchmark) link exactly these objects;
# the same objects go into wincert_winrm.
if(WIN32)
  add_library(wincert_sspi OBJECT
    ${CMAKE_CURRENT_LIST_DIR}/kerberos_names.cpp
    ${CMAKE_CURRENT_LIST_DIR}/wine_layout.cpp
    ${CMAKE_CURRENT_LIST_DIR}/sspi_context.cpp)
  target_include_directories(wincert_sspi PUBLIC ${PROJECT_SOURCE_DIR})
  # UTF-8 <-> UTF-16 and Win32 error text at the call sites: common/win32_text.
  target_link_libraries(wincert_sspi PUBLIC wincert_common secur32 PRIVATE wincert_warnings)
  target_sources(wincert_winrm PRIVATE $<TARGET_OBJECTS:wincert_sspi>)
  target_link_libraries(wincert_winrm PUBLIC secur32)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(KRB5 REQUIRED IMPORTED_TARGET GLOBAL krb5-gssapi krb5)
  add_library(wincert_gssapi OBJECT
    ${CMAKE_CURRENT_LIST_DIR}/kerberos_names.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gssapi_common.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gssapi_context.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gssapi_acceptor.cpp)
  target_include_directories(wincert_gssapi PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(wincert_gssapi PUBLIC wincert_common PkgConfig::KRB5 PRIVATE wincert_warnings)
  target_sources(wincert_winrm PRIVATE $<TARGET_OBJECTS:wincert_gssapi>)
  target_link_libraries(wincert_winrm PRIVATE PkgConfig::KRB5)
endif()
