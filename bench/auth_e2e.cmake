# authint: end-to-end authentication cost per scheme (handshakes per connection, HTTP exchanges per warm
# command) against winhost-sim's acceptors in-process; needs the KDC fixture from the tests.
if(TARGET wincert_test_krb5_kdc)
  include(${PROJECT_SOURCE_DIR}/sim/winhost/gss_auth.cmake)
  add_executable(auth_e2e_bench ${CMAKE_CURRENT_SOURCE_DIR}/auth_e2e_bench.cpp)
  target_link_libraries(auth_e2e_bench PRIVATE wincert_winrm winhost_sim_gss_auth wincert_test_krb5_kdc
    benchmark::benchmark wincert_warnings)
  wincert_asio_coroutines(auth_e2e_bench)
endif()
