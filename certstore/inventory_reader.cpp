// The default InventoryReader: over an inventory read whole.
#include "certstore/cert_store.hpp"

namespace wincert::certstore {

namespace {

class WholeInventoryReader final : public InventoryReader {
 public:
  explicit WholeInventoryReader(StoreInventory inventory) : entries_(std::move(inventory.entries)) {
    problems_ = std::move(inventory.problems);
  }
  Result<std::optional<InventoryEntry>> next() override {
    if (next_ == entries_.size()) return std::optional<InventoryEntry>();
    // Moved out: what the job has passed on is not held twice.
    return std::optional<InventoryEntry>(std::move(entries_[next_++]));
  }

 private:
  std::vector<InventoryEntry> entries_;
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<InventoryReader> read_from(StoreInventory inventory) {
  return std::make_unique<WholeInventoryReader>(std::move(inventory));
}

Task<std::unique_ptr<InventoryReader>> CertStore::read_inventory(std::string store) {
  WINCERT_CO_ASSIGN_OR_RETURN(auto inventory, co_await this->inventory(std::move(store)));
  co_return read_from(std::move(inventory));
}

}  // namespace wincert::certstore
