# winhost-sim: NTLM (gss-ntlmssp), Kerberos/SPNEGO (MIT GSSAPI acceptor), client certificates, message
# encryption and channel-binding enforcement (sim/winhost/gss_auth.*). Reuses the client's framing
# (wincert_winrm_ntlm: encryption, NTLM message parsing, channel binding) and GSSAPI acceptor objects.
include_guard(GLOBAL)
find_package(PkgConfig REQUIRED)
pkg_check_modules(WINHOST_KRB5 REQUIRED IMPORTED_TARGET GLOBAL krb5-gssapi krb5)
add_library(winhost_sim_gss_auth STATIC ${CMAKE_CURRENT_LIST_DIR}/gss_auth.cpp $<TARGET_OBJECTS:wincert_gssapi>)
target_include_directories(winhost_sim_gss_auth PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(winhost_sim_gss_auth
  PUBLIC winhost_sim_lib wincert_winrm_ntlm PkgConfig::WINHOST_KRB5 OpenSSL::Crypto nlohmann_json::nlohmann_json
  PRIVATE wincert_warnings)
wincert_asio_coroutines(winhost_sim_gss_auth)
