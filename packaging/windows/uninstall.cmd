@echo off
rem wincert-agent uninstaller for Windows (run as Administrator):
rem   uninstall.cmd [--name NAME]
rem Stops the service (running jobs finish; undelivered results stay in the outbox), unregisters it and removes
rem %ProgramFiles%\wincert-agent. The configuration, secrets, outbox and log in %ProgramData%\wincert-agent stay:
rem delete that directory yourself to remove them too.
rem WINCERT_INSTALL_DIR overrides the program directory (as for install.cmd).
setlocal EnableExtensions
if not defined WINCERT_INSTALL_DIR set "WINCERT_INSTALL_DIR=%ProgramFiles%\wincert-agent"
set "AGENT=%WINCERT_INSTALL_DIR%\wincert-agent.exe"
set "NAME=wincert-agent"
if /i "%~1"=="--name" set "NAME=%~2"

rem Run from the program directory (its installed copy), this script would keep that directory in use: carry on
rem from a copy in %TEMP% instead (control passes to it for good, with the same arguments).
if /i "%~dp0"=="%WINCERT_INSTALL_DIR%\" (
  copy /y "%~f0" "%TEMP%\wincert-agent-uninstall.cmd" >nul
  cd /d "%TEMP%"
  "%TEMP%\wincert-agent-uninstall.cmd" %*
)

if not exist "%AGENT%" (
  echo uninstall: %AGENT% is not there: nothing to uninstall 1>&2
  exit /b 1
)
"%AGENT%" service uninstall --name "%NAME%"
if errorlevel 1 (
  echo uninstall: the service '%NAME%' was not removed ^(see the message above^) 1>&2
  exit /b 1
)
cd /d "%TEMP%"
rmdir /s /q "%WINCERT_INSTALL_DIR%"
if exist "%AGENT%" (
  echo uninstall: the service is gone but %WINCERT_INSTALL_DIR% could not be removed ^(a file in use?^) 1>&2
  exit /b 1
)
rem (Wine's cmd keeps the script it was started with open, so run from there an empty directory may be left.)
if exist "%WINCERT_INSTALL_DIR%" echo uninstall: remove the empty directory %WINCERT_INSTALL_DIR% yourself
echo uninstall: done ^(configuration and state kept in %%ProgramData%%\wincert-agent^)
exit /b 0
