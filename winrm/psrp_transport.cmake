# PSRP OutOfProc transports: the packet codec (pure code, every platform), and the byte streams under it:
# a child process's stdin/stdout (`pwsh -s`, Linux) and an SSH channel to the `powershell` subsystem (libssh,
# Linux; the Windows cross build has no libssh).
add_library(wincert_psrp_transport STATIC ${CMAKE_CURRENT_SOURCE_DIR}/psrp/outofproc.cpp)
target_include_directories(wincert_psrp_transport PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_psrp_transport PUBLIC wincert_common wincert_asio PRIVATE wincert_warnings)
wincert_asio_coroutines(wincert_psrp_transport)
if(NOT WIN32)
  target_sources(wincert_psrp_transport PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/psrp/process_channel_posix.cpp)
  pkg_check_modules(LIBSSH IMPORTED_TARGET libssh>=0.10)
  if(LIBSSH_FOUND)
    target_sources(wincert_psrp_transport PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/psrp/ssh_channel.cpp)
    target_link_libraries(wincert_psrp_transport PUBLIC PkgConfig::LIBSSH)
    target_compile_definitions(wincert_psrp_transport PUBLIC WINCERT_HAVE_LIBSSH=1)
  else()
    message(STATUS "libssh not found: PowerShell over SSH is not built (scripts/setup.sh installs libssh-dev)")
  endif()
endif()
# The runspace pool client over those streams (psrp.md §6.3, §8.2).
add_library(wincert_psrp_client STATIC ${CMAKE_CURRENT_SOURCE_DIR}/psrp/runspace_pool.cpp)
target_include_directories(wincert_psrp_client PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_psrp_client PUBLIC wincert_psrp wincert_psrp_transport wincert_common wincert_asio
  PRIVATE wincert_warnings)
wincert_asio_coroutines(wincert_psrp_client)
# The runspace pool client over WS-Man (psrp.md §1, §8.1): the PowerShell resource on the WinRM transport.
add_library(wincert_psrp_wsman STATIC ${CMAKE_CURRENT_SOURCE_DIR}/psrp/wsman_runspace_pool.cpp)
target_include_directories(wincert_psrp_wsman PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_psrp_wsman PUBLIC wincert_psrp_client wincert_winrm PRIVATE wincert_warnings)
wincert_asio_coroutines(wincert_psrp_wsman)
