# Fault-matrix rows of the outbox and the scheduler (sources in tests/fault/; registered here until
# tests/fault/ has its own CMakeLists.txt: move these lines there when merging).
set(WINCERT_FAULT_OUTBOX_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/tests/fault/outbox_corrupt_test.cpp
  ${PROJECT_SOURCE_DIR}/tests/fault/outbox_disk_full_test.cpp
  ${PROJECT_SOURCE_DIR}/tests/fault/scheduler_fault_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/daemon_test_support.cpp)
add_executable(fault_outbox_tests ${WINCERT_FAULT_OUTBOX_TEST_SOURCES})
target_link_libraries(fault_outbox_tests PRIVATE wincert_agent_lib GTest::gtest_main wincert_warnings)
target_compile_definitions(fault_outbox_tests PRIVATE WINCERT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(fault_outbox_tests TEST_PREFIX "fault." PROPERTIES TIMEOUT 120 LABELS fault)
# GCC 12 false positives on Boost.Asio coroutine code (see jobs/CMakeLists.txt).
set_source_files_properties(${WINCERT_FAULT_OUTBOX_TEST_SOURCES}
  PROPERTIES COMPILE_OPTIONS "-Wno-null-dereference;-Wno-mismatched-new-delete")
# The real agent process: damaged outbox at start-up, unusable OutboxDirectory (exit 1, logged), and no
# core dump with secrets loaded.
foreach(script outbox_startup secrets_core_dump)
  add_test(NAME fault.${script} COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/fault/${script}.py
                                        $<TARGET_FILE:wincert-agent>)
  set_tests_properties(fault.${script} PROPERTIES TIMEOUT 180 LABELS "agent;fault")
endforeach()
