# Kerberos / SPNEGO through MIT GSSAPI: client context, acceptor, WinRM message sealing.
# Built as an object library so the Kerberos tests and benchmark link exactly these objects; the same
# objects go into wincert_winrm.
find_package(PkgConfig REQUIRED)
pkg_check_modules(KRB5 REQUIRED IMPORTED_TARGET GLOBAL krb5-gssapi krb5)
add_library(wincert_gssapi OBJECT
  ${CMAKE_CURRENT_LIST_DIR}/gssapi_common.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gssapi_context.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gssapi_acceptor.cpp)
target_include_directories(wincert_gssapi PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_gssapi PUBLIC wincert_common PkgConfig::KRB5 PRIVATE wincert_warnings)
target_sources(wincert_winrm PRIVATE $<TARGET_OBJECTS:wincert_gssapi>)
target_link_libraries(wincert_winrm PRIVATE PkgConfig::KRB5)
