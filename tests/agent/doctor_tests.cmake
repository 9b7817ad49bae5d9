# `wincert-agent doctor` as a process against real command-sim and winhost-sim processes on loopback:
# all OK, a bad configuration key, Command unreachable / unresolvable / untrusted TLS / wrong password,
# OAuth right and wrong, WinRM refused and wrong password, and no secret in any output.
if(TARGET wincert-agent AND TARGET command-sim AND TARGET winhost-sim)
  add_test(NAME agent.doctor
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/doctor_test.py $<TARGET_FILE:wincert-agent>
                   $<TARGET_FILE:command-sim> $<TARGET_FILE:winhost-sim>)
  set_tests_properties(agent.doctor PROPERTIES TIMEOUT 300 LABELS "agent;integration")
endif()
