# MS-PSRP message layer (reference psrp.md §2-5): fragments, message headers, the CLIXML object model and the
# typed client/server messages. Pure code with no I/O, shared by the WS-Man and OutOfProc transports.
add_library(wincert_psrp STATIC
  ${CMAKE_CURRENT_LIST_DIR}/fragment.cpp
  ${CMAKE_CURRENT_LIST_DIR}/message.cpp
  ${CMAKE_CURRENT_LIST_DIR}/clixml_value.cpp
  ${CMAKE_CURRENT_LIST_DIR}/messages.cpp)
target_include_directories(wincert_psrp PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(wincert_psrp PUBLIC wincert_winrm_xml wincert_common PkgConfig::PUGIXML PRIVATE wincert_warnings)
