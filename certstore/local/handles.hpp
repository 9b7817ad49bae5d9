// RAII owners for the CryptoAPI / CNG / registry / SCM handles the local backend holds.
// API quirks the owners do not hide (callers handle them where they happen):
//   - CertEnumCertificatesInStore frees the context passed in: see for_each_certificate().
//   - CertDeleteCertificateFromStore always frees its argument: pass CertContext::release().
//   - NCryptDeleteKey frees the key handle when it succeeds: pass NcryptHandle::release() on success.
#pragma once

#include "certstore/local/windows_crypto.hpp"

#include <memory>
#include <utility>

namespace wincert::certstore::local {

// A move-only owner of a handle that is an integer or pointer, closed by Close (any return value ignored:
// there is nothing useful to do when closing fails).
template <typename Handle, auto Close>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(Handle h) : handle_(h) {}
  UniqueHandle(UniqueHandle&& other) noexcept : handle_(std::exchange(other.handle_, Handle{})) {}
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) reset(std::exchange(other.handle_, Handle{}));
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { reset(); }

  Handle get() const { return handle_; }
  explicit operator bool() const { return handle_ != Handle{}; }
  Handle release() { return std::exchange(handle_, Handle{}); }
  void reset(Handle h = Handle{}) {
    if (handle_ != Handle{}) Close(handle_);
    handle_ = h;
  }
  // For out-parameters: closes what was held and hands out the slot.
  Handle* put() {
    reset();
    return &handle_;
  }

 private:
  Handle handle_{};
};

inline void close_store(HCERTSTORE store) { CertCloseStore(store, 0); }
inline void release_provider(HCRYPTPROV provider) { CryptReleaseContext(provider, 0); }
inline void destroy_key(HCRYPTKEY key) { CryptDestroyKey(key); }
inline void destroy_hash(HCRYPTHASH hash) { CryptDestroyHash(hash); }
inline void free_ncrypt(NCRYPT_HANDLE handle) { NCryptFreeObject(handle); }
inline void close_registry_key(HKEY key) { RegCloseKey(key); }
inline void close_service(SC_HANDLE service) { CloseServiceHandle(service); }

using StoreHandle = UniqueHandle<HCERTSTORE, close_store>;
using CryptProvider = UniqueHandle<HCRYPTPROV, release_provider>;
using CryptKey = UniqueHandle<HCRYPTKEY, destroy_key>;
using CryptHash = UniqueHandle<HCRYPTHASH, destroy_hash>;
using NcryptHandle = UniqueHandle<NCRYPT_HANDLE, free_ncrypt>;  // NCRYPT_PROV_HANDLE and NCRYPT_KEY_HANDLE alike
using RegistryKey = UniqueHandle<HKEY, close_registry_key>;
using ServiceHandle = UniqueHandle<SC_HANDLE, close_service>;

struct CertContextDeleter {
  void operator()(const CERT_CONTEXT* context) const { CertFreeCertificateContext(context); }
};
using CertContext = std::unique_ptr<const CERT_CONTEXT, CertContextDeleter>;

struct LocalFreeDeleter {
  void operator()(void* memory) const { LocalFree(memory); }
};
template <typename T>
using LocalMemory = std::unique_ptr<T, LocalFreeDeleter>;

}  // namespace wincert::certstore::local
