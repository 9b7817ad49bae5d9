// One handler per store type x job kind, with the WinCertStore extension's semantics except where
// jobs/DIFFERENCES.md says we deliberately differ.
#pragma once

#include <memory>

#include "jobs/handler.hpp"

namespace wincert::jobs::handlers {

std::shared_ptr<JobHandler> make_wincert_inventory();
std::shared_ptr<JobHandler> make_wincert_management();
std::shared_ptr<JobHandler> make_wincert_reenrollment();

std::shared_ptr<JobHandler> make_iisu_inventory();
std::shared_ptr<JobHandler> make_iisu_management();
std::shared_ptr<JobHandler> make_iisu_reenrollment();

std::shared_ptr<JobHandler> make_winsql_inventory();
std::shared_ptr<JobHandler> make_winsql_management();
std::shared_ptr<JobHandler> make_winsql_reenrollment();

}  // namespace wincert::jobs::handlers
