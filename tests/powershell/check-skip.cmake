# Checks run.cmake's handling of a machine without PowerShell (no pwsh: tools file missing, PATH empty):
# SKIPPED with the reason normally, a failure under CI=true. Needs no PowerShell itself.
#   cmake -DDRIVER=run.cmake -P check-skip.cmake
cmake_minimum_required(VERSION 3.25)
set(empty_dir "${CMAKE_CURRENT_BINARY_DIR}/check-skip-empty-path")
file(MAKE_DIRECTORY "${empty_dir}")
set(driver_args -DPWSH= -DPESTER= -DTOOLS_FILE=${empty_dir}/none.cmake -DMODE=pester -DNAME=x -DTEST_FILES=x.Tests.ps1
                -P "${DRIVER}")

execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=CI PATH=${empty_dir} ${CMAKE_COMMAND} ${driver_args}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
# Print it with the marker broken up, or ctest would mark this very test skipped.
string(REPLACE "WINCERT-POWERSHELL-SKIPPED" "<skip marker>" shown "${out}${err}")
message(STATUS "without pwsh: exit ${result}: ${shown}")
if(NOT result EQUAL 0 OR NOT "${out}${err}" MATCHES "WINCERT-POWERSHELL-SKIPPED: pwsh \\(PowerShell 7\\) not found; run scripts/setup.sh.*dotnet")
  message(FATAL_ERROR "without pwsh the driver must print the skip marker with the reason and exit 0")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -E env CI=true PATH=${empty_dir} ${CMAKE_COMMAND} ${driver_args}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REPLACE "WINCERT-POWERSHELL-SKIPPED" "<skip marker>" shown "${out}${err}")
message(STATUS "without pwsh, CI=true: exit ${result}: ${shown}")
if(result EQUAL 0 OR "${out}${err}" MATCHES "WINCERT-POWERSHELL-SKIPPED" OR NOT "${out}${err}" MATCHES "CI=true")
  message(FATAL_ERROR "under CI=true a missing pwsh must fail the test, not skip it")
endif()
