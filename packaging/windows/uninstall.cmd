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

if not exist "%AGENT%" (
  echo uninstall: %AGENT% is not there: nothing to uninstall 1>&2
  exit /b 1
)
"%AGENT%" service uninstall --name "%NAME%"
if errorlevel 1 (
  echo uninstall: the service '%NAME%' was not removed ^(see the message above^) 1>&2
  exit /b 1
)
rem This script may itself live in the program directory: cmd reads it as it goes, so leave by the last line.
cd /d "%TEMP%"
rmdir /s /q "%WINCERT_INSTALL_DIR%" & echo uninstall: done ^(configuration and state kept^) & exit /b 0
