// collect_inventory: the InventoryUpload that keeps the whole list (replay, tests).
#include "jobs/handler.hpp"

namespace wincert::jobs {

namespace {

class CollectingUpload final : public InventoryUpload {
 public:
  explicit CollectingUpload(WholeInventoryHandler on_finish) : on_finish_(std::move(on_finish)) {}
  boost::asio::awaitable<Status> add(InventoryItem item) override {
    collected_.push_back(std::move(item));
    ++items_;
    co_return Status{};
  }
  boost::asio::awaitable<Status> finish() override { co_return co_await on_finish_(std::move(collected_)); }
  void abandon() override { collected_.clear(); }

 private:
  WholeInventoryHandler on_finish_;
  std::vector<InventoryItem> collected_;
};

}  // namespace

std::function<std::unique_ptr<InventoryUpload>()> collect_inventory(WholeInventoryHandler on_finish) {
  return [on_finish = std::move(on_finish)]() -> std::unique_ptr<InventoryUpload> {
    return std::make_unique<CollectingUpload>(on_finish);
  };
}

}  // namespace wincert::jobs
