// WS-Management namespace and action URIs (MS-WSMV). Prefixes on the wire are arbitrary;
// only these URIs identify elements.
#pragma once

#include <string_view>

namespace wincert::winrm::ns {

inline constexpr std::string_view kSoap = "http://www.w3.org/2003/05/soap-envelope";
inline constexpr std::string_view kAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
inline constexpr std::string_view kWsman = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
inline constexpr std::string_view kWsmanMs = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
inline constexpr std::string_view kShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
inline constexpr std::string_view kTransfer = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
inline constexpr std::string_view kWsmanFault = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
inline constexpr std::string_view kConfig = "http://schemas.microsoft.com/wbem/wsman/1/config";
inline constexpr std::string_view kXml = "http://www.w3.org/XML/1998/namespace";

inline constexpr std::string_view kAnonymous = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
inline constexpr std::string_view kResourceCmd = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
inline constexpr std::string_view kResourceConfig = "http://schemas.microsoft.com/wbem/wsman/1/config";
// A PowerShell session configuration is this prefix + its name (psrp.md §1.1); creationXml lives in kPowerShell.
inline constexpr std::string_view kResourcePowerShellPrefix = "http://schemas.microsoft.com/powershell/";
inline constexpr std::string_view kPowerShell = "http://schemas.microsoft.com/powershell";

}  // namespace wincert::winrm::ns

namespace wincert::winrm::action {

inline constexpr std::string_view kCreate = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
inline constexpr std::string_view kCreateResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse";
inline constexpr std::string_view kDelete = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
inline constexpr std::string_view kDeleteResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse";
inline constexpr std::string_view kGet = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
inline constexpr std::string_view kGetResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
inline constexpr std::string_view kCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
inline constexpr std::string_view kCommandResponse =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse";
inline constexpr std::string_view kSend = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
inline constexpr std::string_view kSendResponse =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse";
inline constexpr std::string_view kReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
inline constexpr std::string_view kReceiveResponse =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse";
inline constexpr std::string_view kSignal = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
inline constexpr std::string_view kSignalResponse =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse";
inline constexpr std::string_view kFault = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";

inline constexpr std::string_view kSignalTerminate =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
inline constexpr std::string_view kSignalCtrlC =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c";

// The stop signal PowerShell's plugin compares ordinally, misspelling included (psrp.md §1.6).
inline constexpr std::string_view kSignalPowerShellStop = "powershell/signal/crtl_c";

inline constexpr std::string_view kStateDone =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
inline constexpr std::string_view kStateRunning =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
inline constexpr std::string_view kStatePending =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Pending";

}  // namespace wincert::winrm::action

namespace wincert::winrm::fault_code {
inline constexpr unsigned long kOperationTimeout = 2150858793UL;    // 0x80338029 w:TimedOut: poll again
inline constexpr unsigned long kShellNotFound = 2150858843UL;       // 0x8033805B w:InvalidSelectors
inline constexpr unsigned long kSchemaValidation = 2150858817UL;    // 0x80338041
inline constexpr unsigned long kMaxShellsPerUser = 2150859173UL;    // 0x803381A5
inline constexpr unsigned long kQuotaCommands = 2150859174UL;       // 0x803381A6
inline constexpr unsigned long kCommandLineTooLong = 2147942606UL;  // 0x800700CE
inline constexpr unsigned long kOperationAborted = 995UL;
inline constexpr unsigned long kAccessDenied = 5UL;  // ERROR_ACCESS_DENIED, w:AccessDenied
}  // namespace wincert::winrm::fault_code
