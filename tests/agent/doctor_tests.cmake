# `wincert-agent doctor` as a process against real command-sim and winhost-sim processes on loopback:
# all OK, a bad configuration key, Command unreachable / unresolvable / untrusted TLS / wrong password,
# OAuth right and wrong, WinRM refused and wrong password, and no secret in any output.
if(TARGET wincert-agent AND TARGET command-sim AND TARGET winhost-sim)
  add_test(NAME agent.doctor
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/doctor_test.py $<TARGET_FILE:wincert-agent>
                   $<TARGET_FILE:command-sim> $<TARGET_FILE:winhost-sim>)
  set_tests_properties(agent.doctor PROPERTIES TIMEOUT 300 LABELS "agent;integration")
endif()
# `wincert-agent winrm ps --psrp --pwsh`: the PSRP command line against a real pwsh -s (SKIPPED without pwsh,
# FAILED under CI=true).
if(TARGET wincert-agent)
  add_test(NAME agent.winrm_psrp_cli
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/winrm_psrp_cli_test.py $<TARGET_FILE:wincert-agent>
                   "--pwsh=${WINCERT_PWSH}" --tools-file ${PROJECT_SOURCE_DIR}/build/tools/powershell-tools.cmake)
  set_tests_properties(agent.winrm_psrp_cli PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS "agent;powershell")
endif()
# `wincert-agent winrm ps --psrp --endpoint`: PSRP over WS-Man against winhost-sim's PowerShell resource.
if(TARGET wincert-agent AND TARGET winhost-sim)
  add_test(NAME agent.winrm_psrp_wsman_cli
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/winrm_psrp_wsman_cli_test.py $<TARGET_FILE:wincert-agent>
                   $<TARGET_FILE:winhost-sim>)
  set_tests_properties(agent.winrm_psrp_wsman_cli PROPERTIES TIMEOUT 300 LABELS "agent;integration")
endif()
# `wincert-agent replay` of an ssh store against a real sshd + pwsh -sshs started by the test (SKIPPED without
# them, FAILED under CI=true).
if(TARGET wincert-agent)
  add_test(NAME agent.replay_ssh
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/replay_ssh_test.py $<TARGET_FILE:wincert-agent>
                   ${WINCERT_SHARED_DIR} "--pwsh=${WINCERT_PWSH}"
                   --tools-file ${PROJECT_SOURCE_DIR}/build/tools/powershell-tools.cmake)
  set_tests_properties(agent.replay_ssh PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "agent;powershell")
endif()
