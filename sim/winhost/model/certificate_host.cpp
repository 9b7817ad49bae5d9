#include "sim/winhost/model/certificate_host.hpp"

#include <string>

#include "sim/winhost/model/ops.hpp"
#include "sim/winhost/windows_model.hpp"

namespace wincert::sim::model {

using nlohmann::json;

namespace {

// Two real trusted roots that every Windows Server 2022 ships in LocalMachine\Root.
constexpr const char* kMicrosoftRsaRoot2017 =
    "MIIFqDCCA5CgAwIBAgIQHtOXCV/YtLNHcB6qvn9FszANBgkqhkiG9w0BAQwFADBlMQswCQYDVQQGEwJVUzEeMBwGA1UEChMVTWlj"
    "cm9zb2Z0IENvcnBvcmF0aW9uMTYwNAYDVQQDEy1NaWNyb3NvZnQgUlNBIFJvb3QgQ2VydGlmaWNhdGUgQXV0aG9yaXR5IDIwMTcw"
    "HhcNMTkxMjE4MjI1MTIyWhcNNDIwNzE4MjMwMDIzWjBlMQswCQYDVQQGEwJVUzEeMBwGA1UEChMVTWljcm9zb2Z0IENvcnBvcmF0"
    "aW9uMTYwNAYDVQQDEy1NaWNyb3NvZnQgUlNBIFJvb3QgQ2VydGlmaWNhdGUgQXV0aG9yaXR5IDIwMTcwggIiMA0GCSqGSIb3DQEB"
    "AQUAA4ICDwAwggIKAoICAQDKW76UM4wplZEWCpW9R2LBifOZNt9GkMml7Xhqb0eRaPgnZ1AzHaGm++DlQ6OEAlcBXZxIQIJTELy/"
    "xztokLaCLeX0ZdDMbRnMlfl7rEqUrQ7eS0MdhweSE5CAg2Q1OQT85elss7YfUJQ4ZVBcF0a5toW1HLUX6NZFndiyJrDKxHBKrmCk"
    "3bPZ7Pw71VdyvD/IybLeS2v4I2wDwAW9lcfNcztmgGTjGqwu+UcF8ga2m3P1eDNbx6H7JyqhtJqRjJHTOoI+dkC0zVJhUXAoP8XF"
    "WvLJjEm7FFtNyP9nTUwSlq31/niol4fX/V4ggNyhSyL71Imtus5Hl0dVe49FyGcohJUcaDDv70ngNXtk55iwlNpNhTs+VcQor1fz"
    "nhPbRiefHqJeRIOkpcrVE7NLP8TjwuaGYaRSMLl6IE9vDzhTyzMMEyuP1pq9KsgtsRx9S1HKR9FIJ3Jdh+vVReZIZZ2vUpC6W6IY"
    "ZVcSn2i51BVrlMRpIpj0M+Dt+VGOQVDJNE92kKz8OMHY4Xu54+OU4UZpyw4KUGsTuqwPN1q3ErWQgR5WrlcihtnJ0tHXUeOrO8ZV"
    "/R4O03QK0dqq6mm4lyiPSMQH+FJDOvTKVTUssKZqwJz58oHhEmrARdlns87/I6KJClTUFLkqqNfs+avNJVgyeY+QW5g5xAgGwax/"
    "Dj0ApQIDAQABo1QwUjAOBgNVHQ8BAf8EBAMCAYYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUCctZf4aycI8awznjwNnpv7tN"
    "siMwEAYJKwYBBAGCNxUBBAMCAQAwDQYJKoZIhvcNAQEMBQADggIBAKyvPl3CEZaJjqPnktaXFbgToqZCLgLNFgVZJ8og6Lq46Brs"
    "TaiXVq5lQ7GPAJtSzVXNUzltYkyLDVt8LkS/gxCP81OCgMNPOsduET/m4xaRhPtthH80dK2Jp86519efhGSSvpWhrQlTM93uCupK"
    "UY5vVau6tZRGrox/2KJQJWVggEbbMwSubLWYdFQl3JPk+ONVFT24bcMKpBLBaYVu32TxU5nhSnUgnZUP5NbcA/FZGOhHibJXWpS2"
    "qdgXKxdJ5XbLwVaZOjex/2kskZGT4d9Mozd2TaGf+G0eHdP67Pv0RR0Tbc/3WeUiJ3IrhvNXuzDtJE3cfVa7o7P4NHmJweDyAmH3"
    "pvwPuxwXC65B2Xy9J6P9LjrRk5Sxcx0ki69bIImtt2dmefU6xqaWM/5TkshGsRGRxpl/j8nWZjEgQRCHLQzWwa80mMpkg/sTV9HB"
    "8Dx6jKXB/ZUhoHHBk2dxEuqPiAppGWSZI1b7rCoucL5mxAyE7+WL85MB+GqQk2dLsmijtWKP6T+MejteD+eMuMZ87zf9dOLITzNy"
    "4ZQ5bb0Sr74MTnB8G2+NszKTc0QWbej09+CVgI+WXTik9KveCjCHk9hNAHFiRSdLOkKEW39lt2c0Ui2cFmuqqNh7o0JMcccMyj6D"
    "5KbvtwEwXlGjefVwaaZBRA+GsCyRxj3qrg+E";
constexpr const char* kDigiCertGlobalRootG2 =
    "MIIDjjCCAnagAwIBAgIQAzrx5qcRqaC7KGSxHQn65TANBgkqhkiG9w0BAQsFADBhMQswCQYDVQQGEwJVUzEVMBMGA1UEChMMRGln"
    "aUNlcnQgSW5jMRkwFwYDVQQLExB3d3cuZGlnaWNlcnQuY29tMSAwHgYDVQQDExdEaWdpQ2VydCBHbG9iYWwgUm9vdCBHMjAeFw0x"
    "MzA4MDExMjAwMDBaFw0zODAxMTUxMjAwMDBaMGExCzAJBgNVBAYTAlVTMRUwEwYDVQQKEwxEaWdpQ2VydCBJbmMxGTAXBgNVBAsT"
    "EHd3dy5kaWdpY2VydC5jb20xIDAeBgNVBAMTF0RpZ2lDZXJ0IEdsb2JhbCBSb290IEcyMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"
    "MIIBCgKCAQEAuzfNNNx7a8myaJCtSnX/RrohCgiN9RlUyfuI2/Ou8jqJkTx65qsGGmvPrC3oXgkkRLpimn7Wo6h+4FR1IAWsULec"
    "YxpsMNzaHxmx1x7e/dfgy5SDN67sH0NO3Xss0r0upS/kqbitOtSZpLYl6ZtrAGCSYP9PIUkY92eQq2EGnI/yuum06ZIya7XzV+hd"
    "G82MHauVBJVJ8zUtluNJbd134/tJS7SsVQepj5WztCO7TG1F8PapspUwtP1MVYwnSlcUfIKdzXOS0xZKBgyMUNGPHgm+F6HmIcr9"
    "g+UQvIOlCsRnKPZzFBQ9RnbDhxSJITRNrw9FDKZJobq7nMWxM4MphQIDAQABo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB"
    "/wQEAwIBhjAdBgNVHQ4EFgQUTiJUIBiV5uNu5g/6+rkS7QYXjzkwDQYJKoZIhvcNAQELBQADggEBAGBnKJRvDkhj6zHd6mcY1Yl9"
    "PMWLSn/pvtsrF9+wX3N3KjITOYFnQoQj8kVnNeyIv/iPsGEMNKSuIEyExtv4NeF22d+mQrvHRAiGfzZ0JFrabA0UWTW98kndth/J"
    "sw1HKj2ZL7tcu7XUIOGZX1NGFdtom/DzMNU+MeKNhJ7jitralj41E6Vf8PlwUHBHQRFXGU7Aj64GxJUTFy8bJZ918rGOmaFvE7FB"
    "cf6IKshPECBV1/MUReXgRPTqh5Uykw7+U0b6LJ3/iyK5S9kJRaTepLiaWN0bfVKfjllDiIGknibVb63dDcY3fe0Dkhvld1927jyN"
    "xF1WW6LZZm6zNTflMrY=";

json provider(const char* name, const char* type) { return json{{"name", name}, {"type", type}}; }

using OpFn = json (*)(Host&, const json&);

WindowsModel::Operation wrap(OpFn fn) {
  return [fn](WindowsModel& model, const json& args) -> OperationOutcome {
    Host host(model);
    try {
      return OperationOutcome::success(fn(host, args));
    } catch (const OpFailure& failure) {
      return OperationOutcome::failure(failure.message, failure.category);
    }
  };
}

}  // namespace

json default_host_data() {
  json data;
  data["stores"] = {
      {"My", json::array()},
      {"WebHosting", json::array()},
      {"CA", json::array()},
      {"Root", json::array({json{{"der", kMicrosoftRsaRoot2017},
                                 {"friendly_name", "Microsoft RSA Root Certificate Authority 2017"}},
                            json{{"der", kDigiCertGlobalRootG2}, {"friendly_name", "DigiCert Global Root G2"}}})},
      {"TrustedPeople", json::array()},
  };
  data["keys"] = json::object();
  data["providers"] = json::array({
      provider("Microsoft Base Cryptographic Provider v1.0", "CSP"),
      provider("Microsoft Base DSS and Diffie-Hellman Cryptographic Provider", "CSP"),
      provider("Microsoft Base DSS Cryptographic Provider", "CSP"),
      provider("Microsoft Base Smart Card Crypto Provider", "CSP"),
      provider("Microsoft DH SChannel Cryptographic Provider", "CSP"),
      provider("Microsoft Enhanced Cryptographic Provider v1.0", "CSP"),
      provider("Microsoft Enhanced DSS and Diffie-Hellman Cryptographic Provider", "CSP"),
      provider("Microsoft Enhanced RSA and AES Cryptographic Provider", "CSP"),
      provider("Microsoft RSA SChannel Cryptographic Provider", "CSP"),
      provider("Microsoft Strong Cryptographic Provider", "CSP"),
      provider("Microsoft Software Key Storage Provider", "KSP"),
      provider("Microsoft Passport Key Storage Provider", "KSP"),
      provider("Microsoft Platform Crypto Provider", "KSP"),
      provider("Microsoft Smart Card Key Storage Provider", "KSP"),
  });
  data["iis"] = {{"installed", true},
                 {"sites", json::array({json{{"name", "Default Web Site"},
                                             {"id", 1},
                                             {"bindings", json::array({json{{"protocol", "http"},
                                                                            {"binding_information", "*:80:"},
                                                                            {"certificate_hash", ""},
                                                                            {"certificate_store_name", ""},
                                                                            {"ssl_flags", 0}}})}}})}};
  data["sql"] = {{"installed", true},
                 {"instances", json::array({json{{"name", "MSSQLSERVER"},
                                                 {"id", "MSSQL16.MSSQLSERVER"},
                                                 {"certificate", ""},
                                                 {"service_account", "NT Service\\MSSQLSERVER"},
                                                 {"service_status", "Running"}}})}};
  data["faults"] = json::object();
  return data;
}

void register_operations(WindowsModel& model) {
  model.register_operation("store-inventory", wrap(&ops::store_inventory));
  model.register_operation("cert-add", wrap(&ops::cert_add));
  model.register_operation("cert-remove", wrap(&ops::cert_remove));
  model.register_operation("csr-create", wrap(&ops::csr_create));
  model.register_operation("csr-accept", wrap(&ops::csr_accept));
  model.register_operation("iis-list-bindings", wrap(&ops::iis_list_bindings));
  model.register_operation("iis-bind", wrap(&ops::iis_bind));
  model.register_operation("iis-unbind", wrap(&ops::iis_unbind));
  model.register_operation("iis-remove-cert-if-unused", wrap(&ops::iis_remove_cert_if_unused));
  model.register_operation("sql-list-instances", wrap(&ops::sql_list_instances));
  model.register_operation("sql-bind", wrap(&ops::sql_bind));
  model.register_operation("sql-unbind", wrap(&ops::sql_unbind));
  model.register_operation("sql-restart", wrap(&ops::sql_restart));
}

void install(WindowsModel& model) {
  json& data = model.data();
  const json defaults = default_host_data();
  for (auto& [key, value] : defaults.items()) {
    if (!data.contains(key)) data[key] = value;
  }
  register_operations(model);
}

}  // namespace wincert::sim::model
