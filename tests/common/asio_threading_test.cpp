// Windows build only. Boost.Asio chooses its thread type by whether _POSIX_THREADS is defined
// when its config is read. The toolchain includes <pthread.h> before anything else in every file so that
// all files make the same choice; this file includes Asio first, as a file that names no standard header
// would, and checks the choice and that an io_context's timer thread is joined.
#include <boost/asio/detail/mutex.hpp>
#include <boost/asio/detail/thread.hpp>
// Asio first, on purpose (see above).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <type_traits>

#if !defined(BOOST_ASIO_HAS_PTHREADS)
#error "Boost.Asio did not see <pthread.h> first: the toolchain's forced include is missing (cmake/windows_deps.cmake)"
#endif
static_assert(std::is_same_v<boost::asio::detail::thread, boost::asio::detail::posix_thread>);
// Only the thread type depends on the include order: mutexes and events are the Windows ones either way.
static_assert(std::is_same_v<boost::asio::detail::mutex, boost::asio::detail::win_mutex>);

namespace {

// The failure this guards against wrote into the freed io_context from its unjoined timer thread; many
// short-lived io_contexts with timers, each destroyed right after its run, gave it room to show.
TEST(AsioThreading, ShortLivedIoContextsWithTimersShutDownCleanly) {
  for (int i = 0; i < 200; ++i) {
    boost::asio::io_context io;
    boost::asio::steady_timer timer(io, std::chrono::milliseconds(i % 2));
    bool fired = false;
    timer.async_wait([&](const boost::system::error_code& ec) { fired = !ec; });
    io.run();
    ASSERT_TRUE(fired) << "iteration " << i;
  }
}

}  // namespace
