# The agent in the Windows build, under Wine (included from tests/agent/CMakeLists.txt if(WIN32)):
#   - the daemon's unit tests: configuration, Orchestrators API client against an in-test server, the outbox
#     (agent/platform/files_windows.cpp: FlushFileBuffers + MoveFileEx), the scheduler and the run loop;
#   - replay of a "|LocalMachine" inventory job through CryptoAPI (Wine fills LocalMachine\Root);
#   - the service end to end: installed and started under Wine's Service Control Manager against the native
#     command-sim of the Linux build (tests/e2e/windows_service.py; skipped when that build is missing).
set(WINCERT_HOST_BUILD_DIR "${PROJECT_SOURCE_DIR}/build/default" CACHE PATH
    "The Linux build whose simulators the Windows end-to-end tests run natively")
include(${CMAKE_CURRENT_LIST_DIR}/daemon_tests.cmake)

add_test(NAME agent.windows.replay_local_root_inventory
         COMMAND wincert-agent replay ${WINCERT_SHARED_DIR}/fixtures/jobs/WinCertInventory.json
                 --set "CertificateStoreDetails.ClientMachine=wine-host|LocalMachine"
                 --set CertificateStoreDetails.StorePath=Root)
set_tests_properties(agent.windows.replay_local_root_inventory PROPERTIES
  TIMEOUT 300 RESOURCE_LOCK wincert_local_machine
  PASS_REGULAR_EXPRESSION "\"Result\": 2,[^}]*inventory returned [1-9][0-9]* item")  # 2 = Success

add_test(NAME agent.windows.service_e2e
         COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/e2e/windows_service.py
                 $<TARGET_FILE:wincert-agent> ${WINCERT_HOST_BUILD_DIR}/sim/command/command-sim
                 ${PROJECT_SOURCE_DIR}/cmake/wine-run.sh ${WINCERT_WINEPREFIX})
set_tests_properties(agent.windows.service_e2e PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 RESOURCE_LOCK wincert_local_machine)
