# WS-Management protocol layer: envelope builders, response/fault parsers, CLIXML decoding (pure code).
target_sources(wincert_winrm PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/messages.cpp)  # xml.cpp and clixml.cpp: wincert_winrm_xml
