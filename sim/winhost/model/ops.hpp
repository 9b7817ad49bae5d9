// The operations, one function per `# wincert-op:` name (internal to the model library). Each reads the
// script's argument object and returns the script's output document, or throws OpFailure.
#pragma once

#include <nlohmann/json.hpp>

#include "sim/winhost/model/host.hpp"

namespace wincert::sim::model::ops {

nlohmann::json store_inventory(Host& host, const nlohmann::json& args);
nlohmann::json cert_add(Host& host, const nlohmann::json& args);
nlohmann::json cert_remove(Host& host, const nlohmann::json& args);
nlohmann::json csr_create(Host& host, const nlohmann::json& args);
nlohmann::json csr_accept(Host& host, const nlohmann::json& args);
nlohmann::json iis_list_bindings(Host& host, const nlohmann::json& args);
nlohmann::json iis_bind(Host& host, const nlohmann::json& args);
nlohmann::json iis_unbind(Host& host, const nlohmann::json& args);
nlohmann::json iis_remove_cert_if_unused(Host& host, const nlohmann::json& args);
nlohmann::json sql_list_instances(Host& host, const nlohmann::json& args);
nlohmann::json sql_bind(Host& host, const nlohmann::json& args);
nlohmann::json sql_unbind(Host& host, const nlohmann::json& args);
nlohmann::json sql_restart(Host& host, const nlohmann::json& args);

}  // namespace wincert::sim::model::ops
