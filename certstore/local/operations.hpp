// The CertStore operations on this machine's LocalMachine stores, as plain blocking calls (CryptoAPI and
// CNG block; LocalCertStore runs these off the caller's executor).
#pragma once

#include "certstore/cert_store.hpp"

#include <string>

namespace wincert::certstore::local {

Result<StoreInventory> inventory_now(const std::string& store);
Result<AddCertificateResult> add_now(const AddCertificateRequest& request);
Result<RemoveResult> remove_now(const RemoveRequest& request);
Result<CertificateRequest> create_csr_now(const CsrRequest& request);
Result<InstallIssuedResult> install_issued_now(const InstallIssuedRequest& request);

// Where create_csr() keeps a pending request until install_issued(): LocalMachine\REQUEST, the store
// certreq uses ("Certificate Enrollment Requests" in certlm.msc).
inline constexpr const char* kPendingRequestStore = "REQUEST";

}  // namespace wincert::certstore::local
