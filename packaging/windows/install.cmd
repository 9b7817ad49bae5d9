@echo off
rem wincert-agent installer for Windows. Run it as Administrator from the unpacked zip:
rem   install.cmd [--no-start] [--name NAME] [--account DOMAIN\svc [--password-env VAR]] [--manual]
rem 1. The first run puts the example configuration at %ProgramData%\wincert-agent\agent.json and an empty
rem    secrets.json beside it, then stops (exit code 2): edit both, then run install.cmd again.
rem 2. Copies the program to %ProgramFiles%\wincert-agent (a service already installed under NAME is stopped
rem    and unregistered first: an upgrade), registers the Windows service (`wincert-agent service install`,
rem    which refuses an unusable configuration) and starts it unless --no-start is given.
rem The configuration, the secrets, the outbox (state\) and the log stay in %ProgramData%\wincert-agent.
rem WINCERT_INSTALL_DIR and WINCERT_CONFIG_DIR override the two directories.
rem Exit codes: 0 installed, 1 failed, 2 configuration created and waiting to be edited.
setlocal EnableExtensions
set "SOURCE=%~dp0"
if not defined WINCERT_INSTALL_DIR set "WINCERT_INSTALL_DIR=%ProgramFiles%\wincert-agent"
if not defined WINCERT_CONFIG_DIR set "WINCERT_CONFIG_DIR=%ProgramData%\wincert-agent"
set "CONFIG=%WINCERT_CONFIG_DIR%\agent.json"
set "AGENT=%WINCERT_INSTALL_DIR%\wincert-agent.exe"
set "NAME=wincert-agent"
set "START=1"
set "ARGS="

:collect
if "%~1"=="" goto collected
if /i "%~1"=="--no-start" (
  set "START=0"
  shift
  goto collect
)
if /i "%~1"=="--name" (
  set "NAME=%~2"
  shift
  shift
  goto collect
)
set ARGS=%ARGS% %1
shift
goto collect
:collected

if not exist "%SOURCE%wincert-agent.exe" (
  echo install: wincert-agent.exe is not beside this script; run it from the unpacked zip 1>&2
  exit /b 1
)

rem --- 1. the configuration --------------------------------------------------------------------------------------
if not exist "%WINCERT_CONFIG_DIR%" mkdir "%WINCERT_CONFIG_DIR%"
if not exist "%CONFIG%" (
  copy /y "%SOURCE%agent.example.json" "%CONFIG%" >nul
  if not exist "%WINCERT_CONFIG_DIR%\secrets.json" (
    echo {}> "%WINCERT_CONFIG_DIR%\secrets.json"
    rem The secrets are for SYSTEM and Administrators only (grant a --account read access yourself).
    icacls "%WINCERT_CONFIG_DIR%\secrets.json" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F >nul 2>&1
  )
  echo install: created %CONFIG% from the example and an empty %WINCERT_CONFIG_DIR%\secrets.json.
  echo install: edit them ^(AgentsServerUri, OrchestratorName, Username; the password as {"Password": "..."}^),
  echo install: then run install.cmd again to register and start the service.
  exit /b 2
)

rem --- 2. the program (an installed service of that name is stopped and unregistered first) ---------------------
if exist "%AGENT%" (
  "%AGENT%" service uninstall --name "%NAME%" >nul 2>&1
)
if not exist "%WINCERT_INSTALL_DIR%" mkdir "%WINCERT_INSTALL_DIR%"
copy /y "%SOURCE%wincert-agent.exe" "%AGENT%" >nul
if errorlevel 1 (
  echo install: cannot copy wincert-agent.exe to %WINCERT_INSTALL_DIR% ^(run as Administrator^) 1>&2
  exit /b 1
)
copy /y "%SOURCE%agent.example.json" "%WINCERT_INSTALL_DIR%\" >nul
copy /y "%SOURCE%README.md" "%WINCERT_INSTALL_DIR%\" >nul
copy /y "%SOURCE%uninstall.cmd" "%WINCERT_INSTALL_DIR%\" >nul
if exist "%SOURCE%store-types" xcopy /e /i /q /y "%SOURCE%store-types" "%WINCERT_INSTALL_DIR%\store-types" >nul
if exist "%SOURCE%jea" xcopy /e /i /q /y "%SOURCE%jea" "%WINCERT_INSTALL_DIR%\jea" >nul

rem --- 3. the service ------------------------------------------------------------------------------------------------
"%AGENT%" service install --config "%CONFIG%" --name "%NAME%" %ARGS%
if errorlevel 1 (
  echo install: the service was not installed ^(see the message above; fix %CONFIG% and run install.cmd again^) 1>&2
  exit /b 1
)
if "%START%"=="1" (
  "%AGENT%" service start --name "%NAME%"
  if errorlevel 1 (
    echo install: the service is installed but did not start: see %WINCERT_CONFIG_DIR%\wincert-agent.log 1>&2
    exit /b 1
  )
)
echo install: done. Program: %WINCERT_INSTALL_DIR%; configuration, outbox and log: %WINCERT_CONFIG_DIR%
exit /b 0
