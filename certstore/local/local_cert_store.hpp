// The local backend: CertStore carried out on this machine through CryptoAPI and CNG (agent mode, a
// store whose client machine ends in "|LocalMachine"). Windows-only; see certstore/local/README.md.
#pragma once

#include "certstore/cert_store.hpp"

#include <memory>

namespace boost::asio {
class thread_pool;
}

namespace wincert::certstore::local {

class LocalCertStore final : public CertStore {
 public:
  // CryptoAPI and CNG calls block (an RSA 4096 key takes seconds), so they run on one worker thread of
  // this object's own; the caller's executor stays free for the agent's network work.
  LocalCertStore();
  ~LocalCertStore() override;
  LocalCertStore(const LocalCertStore&) = delete;
  LocalCertStore& operator=(const LocalCertStore&) = delete;

  Task<StoreInventory> inventory(std::string store) override;
  Task<AddCertificateResult> add(AddCertificateRequest request) override;
  Task<RemoveResult> remove(RemoveRequest request) override;
  Task<CertificateRequest> create_csr(CsrRequest request) override;
  Task<InstallIssuedResult> install_issued(InstallIssuedRequest request) override;

 private:
  std::unique_ptr<boost::asio::thread_pool> worker_;
};

}  // namespace wincert::certstore::local
