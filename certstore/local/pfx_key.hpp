// The private key inside a job's PFX, for importing it into a Windows key provider ourselves. (The public
// open_pfx() describes a PFX but deliberately hands out no key; only this backend needs one.)
#pragma once

#include "certstore/openssl_util.hpp"
#include "common/result.hpp"
#include "common/secret.hpp"

#include <string_view>

namespace wincert::certstore::local {

// contents_base64 and password as the job sends them; label names the certificate in messages.
// open_job_certificate() has already accepted the PFX, so failures here are unexpected but still errors.
Result<ossl::PKeyPtr> pfx_private_key(const Secret& contents_base64, const Secret& password, std::string_view label);

}  // namespace wincert::certstore::local
