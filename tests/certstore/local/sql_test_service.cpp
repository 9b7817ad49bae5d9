// A do-nothing Windows service for the SQL Server bindings' restart tests: it reports Running until the
// Service Control Manager asks it to stop. The tests register it (CreateServiceW) under the service name of
// a test instance ("MSSQL$<name>") and delete it afterwards.
#include <windows.h>

namespace {

SERVICE_STATUS_HANDLE status_handle = nullptr;
HANDLE stop_event = nullptr;

void report(DWORD state) {
  SERVICE_STATUS status{};
  status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  status.dwCurrentState = state;
  status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP : 0;
  SetServiceStatus(status_handle, &status);
}

DWORD WINAPI control(DWORD code, DWORD, void*, void*) {
  if (code == SERVICE_CONTROL_STOP) {
    report(SERVICE_STOP_PENDING);
    SetEvent(stop_event);
  }
  return NO_ERROR;
}

void WINAPI service_main(DWORD, wchar_t** argv) {
  status_handle = RegisterServiceCtrlHandlerExW(argv[0], control, nullptr);
  if (status_handle == nullptr) return;
  stop_event = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  report(SERVICE_RUNNING);
  WaitForSingleObject(stop_event, INFINITE);
  report(SERVICE_STOPPED);
}

}  // namespace

int main() {
  wchar_t name[] = L"";  // SERVICE_WIN32_OWN_PROCESS: the name is ignored
  SERVICE_TABLE_ENTRYW table[] = {{name, service_main}, {nullptr, nullptr}};
  return StartServiceCtrlDispatcherW(table) ? 0 : 1;
}
