# command-sim (sim/command): the real binary started as a child process, driven over HTTP(S) by a
# GoogleTest client, plus an independent Python client (urllib) registered as its own ctest.
if(TARGET command-sim)
  add_executable(command_sim_tests
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_support.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_api_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_jobs_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_ops_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_auth_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_errors_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_http_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/command_sim_native_test.cpp)
  target_link_libraries(command_sim_tests PRIVATE command_sim_lib wincert_certstore OpenSSL::SSL OpenSSL::Crypto
    wincert_test_matchers GTest::gmock GTest::gtest_main wincert_warnings)
  add_dependencies(command_sim_tests command-sim)
  # WINCERT_SHARED_DIR (the fixtures) comes from tests/CMakeLists.txt.
  target_compile_definitions(command_sim_tests PRIVATE WINCERT_COMMAND_SIM="$<TARGET_FILE:command-sim>")
  wincert_asio_coroutines(command_sim_tests)
  gtest_discover_tests(command_sim_tests TEST_PREFIX "command_sim." DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT 300 LABELS sim)

  # An independent client: Python's urllib registers, fetches a job and completes it.
  add_test(NAME command_sim.python_client
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/command_sim_client.py $<TARGET_FILE:command-sim>)
  set_tests_properties(command_sim.python_client PROPERTIES TIMEOUT 120 LABELS sim)

  # State survives kill -9: what command-sim acknowledged is in its database after a restart.
  add_test(NAME command_sim.kill9_restart
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/command_sim_kill9_test.py $<TARGET_FILE:command-sim>)
  set_tests_properties(command_sim.kill9_restart PROPERTIES TIMEOUT 120 LABELS sim)
endif()
