# Packages, made with CPack in a build directory (README.md "Installing"):
#   Linux build:   cpack -G DEB  ->  packages/wincert-agent_<version>-1_<arch>.deb
#   Windows build: cpack -G ZIP  ->  packages/wincert-agent-<version>-win64.zip
# The install() rules below are what ships. The simulators (command-sim, winhost-sim) are test and demo tools
# and stay out of both packages. Files of the packages live in packaging/debian and packaging/windows;
# tests/packaging builds each package and installs it (Debian: into a throwaway root; Windows: under Wine).

set(WINCERT_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(WINCERT_PACKAGE_MAINTAINER "wincert-agent maintainers <maintainers@users.noreply.r-seed-8b12373a.example>")

set(CPACK_PACKAGE_NAME wincert-agent)
set(CPACK_PACKAGE_VENDOR "wincert-agent")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${WINCERT_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Keyfactor Command orchestrator for Windows certificate stores")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_GENERATOR "")  # no source packages: the git tree is the source

# Store-type definitions for Command and JEA endpoint files: shipped once those directories exist.
set(WINCERT_STORE_TYPES_DIR ${PROJECT_SOURCE_DIR}/config/store-types)
set(WINCERT_JEA_DIR ${PROJECT_SOURCE_DIR}/config/jea)

if(WIN32)
  # ---- Windows: a zip with the agent, an installer script and the configuration to edit ----------------------
  set(CPACK_GENERATOR ZIP)
  set(CPACK_SYSTEM_NAME win64)
  set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY ON)  # unpacks into wincert-agent-<version>-win64/
  # The example configuration with Windows paths: relative paths are relative to the configuration file, so
  # with the installer's %ProgramData%\wincert-agent\agent.json the secrets, CA files and state sit beside it.
  file(READ ${PROJECT_SOURCE_DIR}/config/agent.example.json WINCERT_EXAMPLE_CONFIG)
  string(REPLACE "/var/lib/wincert-agent" "state" WINCERT_EXAMPLE_CONFIG "${WINCERT_EXAMPLE_CONFIG}")
  string(REPLACE "/etc/wincert-agent/" "" WINCERT_EXAMPLE_CONFIG "${WINCERT_EXAMPLE_CONFIG}")
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/packaging/agent.example.json CONTENT "${WINCERT_EXAMPLE_CONFIG}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/agent.example.json)

  install(TARGETS wincert-agent RUNTIME DESTINATION .)
  install(PROGRAMS ${WINCERT_PACKAGING_DIR}/windows/install.cmd ${WINCERT_PACKAGING_DIR}/windows/uninstall.cmd
          DESTINATION .)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/agent.example.json ${PROJECT_SOURCE_DIR}/README.md DESTINATION .)
  install(DIRECTORY ${WINCERT_STORE_TYPES_DIR}/ DESTINATION store-types OPTIONAL)
  install(DIRECTORY ${WINCERT_JEA_DIR}/ DESTINATION jea OPTIONAL)
else()
  # ---- Debian: cpack -G DEB ------------------------------------------------------------------------------------
  set(CPACK_GENERATOR DEB)
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # wincert-agent_<version>-<release>_<arch>.deb
  set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
  set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${WINCERT_PACKAGE_MAINTAINER}")
  set(CPACK_DEBIAN_PACKAGE_SECTION admin)
  set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/keyfactor")
  # The extended description (CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY on the first line).
  string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
         "wincert-agent does the job of Keyfactor's Universal Orchestrator with the\n"
         "WinCertStore extension: it registers with Keyfactor Command and carries out\n"
         "Inventory, Management and Reenrollment jobs on the certificate stores of\n"
         "Windows hosts (WinCert, IISU and WinSql store types), reached over WinRM\n"
         "with Basic, NTLM, Kerberos/Negotiate or client certificates.\n"
         "It runs as a hardened systemd service, started once\n"
         "/etc/wincert-agent/agent.json is configured.")
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps (libssl3, libkrb5-3, libstdc++6, ...)
  # The maintainer scripts create the user through systemd-sysusers or adduser, and manage the unit.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
      ${WINCERT_PACKAGING_DIR}/debian/postinst ${WINCERT_PACKAGING_DIR}/debian/prerm
      ${WINCERT_PACKAGING_DIR}/debian/postrm)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
  set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
      OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

  # Documentation: Debian wants the man page and the changelog compressed (gzip -9n: no name, no timestamp).
  set(WINCERT_DEB_STAGE ${PROJECT_BINARY_DIR}/packaging/debian)
  string(TIMESTAMP WINCERT_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)  # honours SOURCE_DATE_EPOCH
  file(WRITE ${WINCERT_DEB_STAGE}/changelog.Debian
       "wincert-agent (${PROJECT_VERSION}-1) unstable; urgency=medium\n\n"
       "  * Built with CPack from the wincert-agent source tree.\n\n"
       " -- ${WINCERT_PACKAGE_MAINTAINER}  ${WINCERT_CHANGELOG_DATE}\n")
  set(WINCERT_VERSION ${PROJECT_VERSION})
  configure_file(${WINCERT_PACKAGING_DIR}/debian/wincert-agent.8 ${WINCERT_DEB_STAGE}/wincert-agent.8 @ONLY)
  add_custom_command(
    OUTPUT ${WINCERT_DEB_STAGE}/changelog.Debian.gz ${WINCERT_DEB_STAGE}/wincert-agent.8.gz
    COMMAND gzip -9nf -k ${WINCERT_DEB_STAGE}/changelog.Debian ${WINCERT_DEB_STAGE}/wincert-agent.8
    DEPENDS ${WINCERT_DEB_STAGE}/changelog.Debian ${WINCERT_DEB_STAGE}/wincert-agent.8
    COMMENT "Compressing the Debian changelog and man page")
  add_custom_target(wincert_deb_docs ALL
                    DEPENDS ${WINCERT_DEB_STAGE}/changelog.Debian.gz ${WINCERT_DEB_STAGE}/wincert-agent.8.gz)

  # Full RELRO (Debian's hardening: the GOT is read-only once the agent has started).
  target_link_options(wincert-agent PRIVATE -Wl,-z,relro -Wl,-z,now)

  set(WINCERT_DOC_DIR share/doc/wincert-agent)
  install(TARGETS wincert-agent RUNTIME DESTINATION bin)
  # CPack's strip keeps the compiler's .comment section; drop it as dh_strip does.
  install(CODE "execute_process(COMMAND \"${CMAKE_OBJCOPY}\" --remove-section=.comment --remove-section=.note
                                        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/wincert-agent\"
                                COMMAND_ERROR_IS_FATAL ANY)")
  install(FILES ${PROJECT_SOURCE_DIR}/config/wincert-agent.service DESTINATION /lib/systemd/system)
  install(FILES ${WINCERT_PACKAGING_DIR}/debian/sysusers.conf DESTINATION lib/sysusers.d RENAME wincert-agent.conf)
  install(FILES ${WINCERT_PACKAGING_DIR}/debian/tmpfiles.conf DESTINATION lib/tmpfiles.d RENAME wincert-agent.conf)
  install(FILES ${PROJECT_SOURCE_DIR}/config/agent.example.json DESTINATION ${WINCERT_DOC_DIR}/examples)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md ${WINCERT_PACKAGING_DIR}/debian/README.Debian
                ${WINCERT_PACKAGING_DIR}/debian/copyright ${WINCERT_DEB_STAGE}/changelog.Debian.gz
          DESTINATION ${WINCERT_DOC_DIR})
  install(FILES ${WINCERT_DEB_STAGE}/wincert-agent.8.gz DESTINATION share/man/man8)
  install(FILES ${WINCERT_PACKAGING_DIR}/debian/lintian-overrides DESTINATION share/lintian/overrides
          RENAME wincert-agent)
  # The definitions are data; their README (how to import them into Command) is documentation.
  install(DIRECTORY ${WINCERT_STORE_TYPES_DIR}/ DESTINATION share/wincert-agent/store-types OPTIONAL
          PATTERN README.md EXCLUDE)
  if(EXISTS ${WINCERT_STORE_TYPES_DIR}/README.md)
    install(FILES ${WINCERT_STORE_TYPES_DIR}/README.md DESTINATION ${WINCERT_DOC_DIR} RENAME README.store-types.md)
  endif()
endif()

include(CPack)

if(WINCERT_BUILD_TESTS)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/packaging ${PROJECT_BINARY_DIR}/tests/packaging)
endif()
