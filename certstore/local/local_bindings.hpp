// What the agent calls for a store whose client machine is this one (agent mode): SQL Server natively
// (registry, key-file ACL, Service Control Manager), IIS through the same iis-*.ps1 scripts as the
// remote path, run by a local powershell.exe. Windows-only.
#pragma once

#include "certstore/cert_store.hpp"
#include "certstore/local/local_sql_bindings.hpp"
#include "certstore/local/powershell_process.hpp"

#include <memory>

namespace wincert::certstore::local {

// RemoteIisBindings over a ScriptCaller over a PowerShellProcess; the returned object owns all three.
std::shared_ptr<IisBindings> make_local_iis_bindings(LocalPowerShellOptions options = {});
std::shared_ptr<SqlBindings> make_local_sql_bindings(LocalSqlOptions options = {});

// The local CertStore: LocalCertStore, and when an add carries post-import steps (the remote cert-add
// script does them in the same invocation), each step right after the import, in order: an IIS binding
// through `iis` (then the replaced certificate removed if no IIS binding still uses it), a SQL Server
// binding through `sql`. As in the extension, a failed binding leaves the certificate imported and says so.
std::shared_ptr<CertStore> make_local_cert_store(std::shared_ptr<IisBindings> iis, std::shared_ptr<SqlBindings> sql);

// Every service of this machine as one HostSession (what the agent hands local jobs): the three above,
// sharing one IIS stack and one SQL backend.
std::shared_ptr<HostSession> make_local_host_session(LocalPowerShellOptions powershell = {}, LocalSqlOptions sql = {});

}  // namespace wincert::certstore::local
