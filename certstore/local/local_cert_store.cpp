#include "certstore/local/local_cert_store.hpp"

#include "certstore/local/blocking_worker.hpp"
#include "certstore/local/operations.hpp"

#include <boost/asio/thread_pool.hpp>

#include <utility>

namespace wincert::certstore::local {

LocalCertStore::LocalCertStore() : worker_(std::make_unique<boost::asio::thread_pool>(1)) {}

LocalCertStore::~LocalCertStore() { worker_->join(); }

Task<StoreInventory> LocalCertStore::inventory(std::string store) {
  return run_on_worker<StoreInventory>(*worker_, [store = std::move(store)] { return inventory_now(store); });
}

Task<AddCertificateResult> LocalCertStore::add(AddCertificateRequest request) {
  return run_on_worker<AddCertificateResult>(*worker_, [request = std::move(request)] { return add_now(request); });
}

Task<RemoveResult> LocalCertStore::remove(RemoveRequest request) {
  return run_on_worker<RemoveResult>(*worker_, [request = std::move(request)] { return remove_now(request); });
}

Task<CertificateRequest> LocalCertStore::create_csr(CsrRequest request) {
  return run_on_worker<CertificateRequest>(*worker_,
                                           [request = std::move(request)] { return create_csr_now(request); });
}

Task<InstallIssuedResult> LocalCertStore::install_issued(InstallIssuedRequest request) {
  return run_on_worker<InstallIssuedResult>(*worker_,
                                            [request = std::move(request)] { return install_issued_now(request); });
}

}  // namespace wincert::certstore::local
