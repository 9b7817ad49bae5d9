# Kerberos / Negotiate (SPNEGO, NTLM fallback) HttpAuth for the transport: GSSAPI contexts from
# kerberos.cmake, native NTLM from auth.cmake. Compiled into wincert_winrm.
target_sources(wincert_winrm PRIVATE ${CMAKE_CURRENT_LIST_DIR}/negotiate_http_auth.cpp)
