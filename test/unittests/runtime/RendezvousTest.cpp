//===- RendezvousTest.cpp - bytes from rank 0 over TCP --------------------===//

#include "lora/runtime/Rendezvous.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace lora::runtime;

namespace {

/// A port nothing listens on right now (the kernel's pick, released).
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST(RendezvousTest, EveryRankGetsRankZerosBytes) {
  int port = freePort();
  std::vector<uint8_t> id(128);
  for (size_t i = 0; i < id.size(); ++i)
    id[i] = uint8_t(i * 7 + 3);
  std::vector<std::vector<uint8_t>> received(3);
  std::vector<Status> statuses(3, Status::success());
  std::vector<std::thread> ranks;
  // The receivers start first: they must wait for rank 0 to listen.
  for (int rank = 1; rank < 4; ++rank)
    ranks.emplace_back([&, rank] {
      statuses[size_t(rank - 1)] = shareFromRankZero(
          rank, 4, "localhost", port, received[size_t(rank - 1)], 20);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Status served = shareFromRankZero(0, 4, "localhost", port, id, 20);
  for (std::thread &t : ranks)
    t.join();
  ASSERT_TRUE(served.ok()) << served.message();
  for (size_t r = 0; r < 3; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << statuses[r].message();
    EXPECT_EQ(received[r], id) << "rank " << r + 1;
  }
}

TEST(RendezvousTest, NoRankZeroTimesOutNamingTheAddress) {
  int port = freePort();
  std::vector<uint8_t> bytes;
  Status status = shareFromRankZero(1, 2, "127.0.0.1", port, bytes, 0.3);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot reach rank 0 at 127.0.0.1:" +
                                  std::to_string(port)),
            std::string::npos)
      << status.message();
}

TEST(RendezvousTest, MissingRanksTimeOutOnRankZero) {
  int port = freePort();
  std::vector<uint8_t> bytes(4, 1);
  Status status = shareFromRankZero(0, 3, "", port, bytes, 0.3);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "rank 0: only 0 of 2 ranks connected to port " +
                                  std::to_string(port) + " before the timeout");
}

TEST(RendezvousTest, LaunchNeedsMasterAddressAndPort) {
  LaunchEnvironment launch;
  launch.worldSize = 2;
  std::vector<uint8_t> bytes;
  EXPECT_FALSE(shareFromRankZero(launch, bytes, 1).ok());
}

} // namespace
