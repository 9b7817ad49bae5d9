# ctest driver for the PowerShell tests (label "powershell"). Finds pwsh and Pester at TEST time, so running
# scripts/setup.sh after configuring is enough:
#   1. -DPWSH=... / -DPESTER=... (the cache variables WINCERT_PWSH / WINCERT_PESTER), when set;
#   2. build/tools/powershell-tools.cmake, written by scripts/setup.sh (PowerShell 7.6.10, Pester 5.7.1);
#   3. pwsh on PATH (Pester then still has to come from 1 or 2).
# Missing: the test prints the skip marker below (ctest SKIP_REGULAR_EXPRESSION: CMake 3.25's script mode
# cannot choose its exit code) - except under CI=true, where a missing PowerShell fails the test.
#   cmake -DMODE=pester -DTOOLS_FILE=... -DTEST_FILES="a|b" -DNAME=... [-DRESULT_FILE=...] [-DEXCLUDE_TAG=...]
#         [-DCOVERAGE_PATH=... -DCOVERAGE_FILE=...] -P run.cmake
#   cmake -DMODE=ps51 -DTOOLS_FILE=... -DCHECKER=Test-Ps51Compat.ps1 -DGLOBS="dir/*.psm1|..." -P run.cmake
cmake_minimum_required(VERSION 3.25)

function(skip_or_fail reason)
  set(hint "run scripts/setup.sh (it installs PowerShell 7.6.10 and Pester 5.7.1 into build/tools with 'dotnet', the .NET 10 SDK)")
  if("$ENV{CI}" STREQUAL "true")
    message(FATAL_ERROR "powershell tests: ${reason}; CI=true, so this is a failure: ${hint}")
  endif()
  message("WINCERT-POWERSHELL-SKIPPED: ${reason}; ${hint}")
endfunction()

if(EXISTS "${TOOLS_FILE}")
  include("${TOOLS_FILE}")
endif()
if(NOT PWSH AND WINCERT_PWSH_FOUND AND EXISTS "${WINCERT_PWSH_FOUND}")
  set(PWSH "${WINCERT_PWSH_FOUND}")
endif()
if(NOT PESTER AND WINCERT_PESTER_FOUND AND EXISTS "${WINCERT_PESTER_FOUND}")
  set(PESTER "${WINCERT_PESTER_FOUND}")
endif()
if(NOT PWSH)
  find_program(PWSH_ON_PATH pwsh)
  if(PWSH_ON_PATH)
    set(PWSH "${PWSH_ON_PATH}")
  endif()
endif()
if(NOT PWSH)
  skip_or_fail("pwsh (PowerShell 7) not found")
  return()
endif()

# List values arrive '|'-separated (a ';' would split the ctest command line).
foreach(list_var GLOBS RECURSIVE_GLOBS TEST_FILES EXCLUDE_TAG COVERAGE_PATH)
  if(DEFINED ${list_var})
    string(REPLACE "|" ";" ${list_var} "${${list_var}}")
  endif()
endforeach()

set(pwsh_command "${PWSH}" -NoLogo -NoProfile -NonInteractive -File)
if(MODE STREQUAL "pester")
  if(NOT PESTER OR NOT EXISTS "${PESTER}")
    skip_or_fail("Pester not found (looked for ${TOOLS_FILE})")
    return()
  endif()
  # pwsh -File passes each argument as one string: lists go comma-joined (run-pester.ps1 splits them).
  list(JOIN TEST_FILES "," test_files)
  set(args -PesterPath "${PESTER}" -Name "${NAME}" -TestPath "${test_files}")
  if(RESULT_FILE)
    list(APPEND args -ResultFile "${RESULT_FILE}")
  endif()
  if(EXCLUDE_TAG)
    list(JOIN EXCLUDE_TAG "," exclude_tags)
    list(APPEND args -ExcludeTag "${exclude_tags}")
  endif()
  if(COVERAGE_PATH)
    list(JOIN COVERAGE_PATH "," coverage_paths)
    list(APPEND args -CoveragePath "${coverage_paths}" -CoverageFile "${COVERAGE_FILE}")
  endif()
  get_filename_component(here "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
  execute_process(COMMAND ${pwsh_command} "${here}/run-pester.ps1" ${args} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "Pester reported failures (exit ${result}); see the summary above")
  endif()
elseif(MODE STREQUAL "ps51")
  # The file set is globbed now, so it is whatever the module and the generated scripts are today.
  file(GLOB targets ${GLOBS})
  if(RECURSIVE_GLOBS)
    file(GLOB_RECURSE generated ${RECURSIVE_GLOBS})
    list(APPEND targets ${generated})
  endif()
  if(NOT targets)
    message(FATAL_ERROR "ps51-check: no PowerShell files match ${GLOBS}")
  endif()
  execute_process(COMMAND ${pwsh_command} "${CHECKER}" ${targets} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "ps51-check: the scripts use what Windows PowerShell 5.1 lacks, or the check failed (exit ${result})")
  endif()
else()
  message(FATAL_ERROR "run.cmake: MODE must be pester or ps51")
endif()
