# Fault matrix, WinRM rows (tests/fault/winrm_*.cpp; the rows are listed in tests/fault/ROWS-winrm.md).
# Registered here until tests/fault/ has its own CMakeLists.txt; label "fault".
add_executable(winrm_fault_tests ${PROJECT_SOURCE_DIR}/tests/fault/winrm_faults_test.cpp)
target_link_libraries(winrm_fault_tests PRIVATE wincert_winrm GTest::gtest_main wincert_warnings)
set_source_files_properties(${PROJECT_SOURCE_DIR}/tests/fault/winrm_faults_test.cpp
  PROPERTIES COMPILE_OPTIONS "-Wno-null-dereference;-Wno-mismatched-new-delete")
gtest_discover_tests(winrm_fault_tests TEST_PREFIX "fault.winrm." DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 120 LABELS "fault")
