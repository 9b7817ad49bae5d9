// The one place the local backend includes the Windows crypto headers.
// wincrypt.h #defines names that OpenSSL uses for its types (X509_NAME, X509_EXTENSIONS, ...); this backend
// uses OpenSSL's, so those macros are removed again (the list OpenSSL's own <openssl/types.h> undefines,
// which only helps when wincrypt.h comes first).
#pragma once

// Order matters (windows.h first), hence one include per block.
#include <windows.h>

#include <wincrypt.h>

#include <ncrypt.h>

#undef X509_NAME
#undef X509_EXTENSIONS
#undef X509_CERT_PAIR
#undef PKCS7_ISSUER_AND_SERIAL
#undef PKCS7_SIGNER_INFO
#undef OCSP_REQUEST
#undef OCSP_RESPONSE
