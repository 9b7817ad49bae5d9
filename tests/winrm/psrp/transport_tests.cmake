# PSRP OutOfProc transports (label "psrp_transport"): the packet codec, a real `pwsh -s` child, and a real
# OpenSSH server (started by the tests on a loopback port) with the `powershell` subsystem.
#   ctest -L psrp_transport                              all of them (about 6 s with pwsh and sshd here)
#   ctest -R 'psrp_transport\.(OutOfProcCodec|LineBuffer)' the codec (no peer)
#   ctest -R 'psrp_transport\.ProcessChannel'            child processes: /bin/false, /bin/cat, sh
#   ctest -R 'psrp_transport\.PwshChild'                 pwsh -s (SKIPPED without pwsh, FAILED under CI=true)
#   ctest -R 'psrp_transport\.RunspacePool'        the runspace pool client against pwsh -s (same skip rules)
#   ctest -R 'psrp_transport\.Ssh'                       sshd + pwsh -sshs (SKIPPED without sshd, pwsh, root or
#                                                        libssh; FAILED under CI=true)
# pwsh is found at test time: the environment variable WINCERT_PWSH, then the cache variable WINCERT_PWSH (shared
# with tests/powershell), then build/tools/pwsh/pwsh from scripts/setup.sh, then PATH.
set(WINCERT_PWSH "" CACHE FILEPATH "pwsh (PowerShell 7) for the PowerShell tests; empty = build/tools from scripts/setup.sh, then PATH")
add_executable(winrm_psrp_transport_tests
  ${CMAKE_CURRENT_LIST_DIR}/outofproc_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/process_channel_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_channel_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runspace_pool_test.cpp)
target_link_libraries(winrm_psrp_transport_tests PRIVATE wincert_psrp_client wincert_psrp_transport yaml-cpp wincert_test_matchers
  GTest::gmock GTest::gtest_main wincert_warnings)
wincert_asio_coroutines(winrm_psrp_transport_tests)
target_compile_definitions(winrm_psrp_transport_tests PRIVATE
  WINCERT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  WINCERT_PSRP_PWSH="${WINCERT_PWSH}"
  WINCERT_PSRP_TOOLS_PWSH="${PROJECT_SOURCE_DIR}/build/tools/pwsh/pwsh")
gtest_discover_tests(winrm_psrp_transport_tests TEST_PREFIX "psrp_transport." DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 300 LABELS psrp_transport)
