# ctest driver for the PowerShell grammar check: keeps node_modules in the build tree (never in the
# source tree), installs it with "npm ci" only when missing or when the lock file changed (so a machine
# that already installed it works offline), then runs check.mjs.
#   cmake -DNODE=... -DNPM=... -DSOURCE_DIR=tools/ps-syntax -DWORK_DIR=<build>/ps-syntax -DMODE=install|check
#         [-DTARGETS="file;dir"] -P run.cmake
cmake_minimum_required(VERSION 3.25)
if(MODE STREQUAL "install")
  file(MAKE_DIRECTORY "${WORK_DIR}")
  foreach(name package.json package-lock.json .npmrc)
    configure_file("${SOURCE_DIR}/${name}" "${WORK_DIR}/${name}" COPYONLY)
  endforeach()
  file(SHA256 "${SOURCE_DIR}/package-lock.json" lock_hash)
  set(stamp "${WORK_DIR}/node_modules/.wincert-lock-sha256")
  set(installed_hash "")
  if(EXISTS "${stamp}")
    file(READ "${stamp}" installed_hash)
  endif()
  if(installed_hash STREQUAL lock_hash AND EXISTS "${WORK_DIR}/node_modules/web-tree-sitter/package.json"
     AND EXISTS "${WORK_DIR}/node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm")
    message(STATUS "ps-syntax: node_modules up to date in ${WORK_DIR}")
    return()
  endif()
  execute_process(COMMAND "${NPM}" ci --no-audit --no-fund --prefer-offline
                  WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE npm_result)
  if(NOT npm_result EQUAL 0)
    message(FATAL_ERROR "ps-syntax: npm ci failed in ${WORK_DIR} (exit ${npm_result}); the npm registry must be reachable once")
  endif()
  file(WRITE "${stamp}" "${lock_hash}")
elseif(MODE STREQUAL "check")
  execute_process(COMMAND "${NODE}" "${SOURCE_DIR}/check.mjs" --modules "${WORK_DIR}/node_modules" ${TARGETS}
                  RESULT_VARIABLE check_result)
  if(NOT check_result EQUAL 0)
    message(FATAL_ERROR "ps-syntax: check.mjs reported syntax errors (exit ${check_result})")
  endif()
elseif(MODE STREQUAL "expect_errors")
  # The check must fail with exit code 1 (syntax errors) - not 2 (setup problem) - and name line:column.
  execute_process(COMMAND "${NODE}" "${SOURCE_DIR}/check.mjs" --modules "${WORK_DIR}/node_modules" ${TARGETS}
                  RESULT_VARIABLE check_result OUTPUT_VARIABLE check_output ERROR_VARIABLE check_errors)
  message(STATUS "check.mjs output:\n${check_output}${check_errors}")
  if(NOT check_result EQUAL 1)
    message(FATAL_ERROR "ps-syntax: expected exit code 1 for a broken script, got ${check_result}")
  endif()
  if(NOT check_output MATCHES "\\.ps1:[0-9]+:[0-9]+: (ERROR|MISSING)")
    message(FATAL_ERROR "ps-syntax: the report does not name the error's file:line:column")
  endif()
else()
  message(FATAL_ERROR "run.cmake: MODE must be install, check or expect_errors")
endif()
