//===- Rendezvous.cpp - bytes from rank 0 to every rank over TCP ----------===//

#include "lora/runtime/Rendezvous.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace lora::runtime {
namespace {

using Clock = std::chrono::steady_clock;

/// Closes the descriptor when it goes out of scope.
struct Socket {
  int fd = -1;
  explicit Socket(int fd) : fd(fd) {}
  ~Socket() {
    if (fd >= 0)
      close(fd);
  }
};

int millisecondsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  return left > 0 ? int(left) : 0;
}

/// Sends or receives exactly `length` bytes before the deadline.
bool transfer(int fd, uint8_t *data, size_t length, bool sending,
              Clock::time_point deadline) {
  size_t done = 0;
  while (done < length) {
    pollfd waiting{fd, short(sending ? POLLOUT : POLLIN), 0};
    int left = millisecondsLeft(deadline);
    if (left == 0 || poll(&waiting, 1, left) <= 0)
      return false;
    ssize_t n = sending ? send(fd, data + done, length - done, MSG_NOSIGNAL)
                        : recv(fd, data + done, length - done, 0);
    if (n <= 0)
      return false;
    done += size_t(n);
  }
  return true;
}

std::string where(const std::string &address, int port) {
  return address + ":" + std::to_string(port);
}

Status serve(int worldSize, int port, const std::vector<uint8_t> &bytes,
             Clock::time_point deadline) {
  Socket listener(socket(AF_INET6, SOCK_STREAM, 0));
  bool ipv6 = listener.fd >= 0;
  if (!ipv6)
    listener.fd = socket(AF_INET, SOCK_STREAM, 0);
  if (listener.fd < 0)
    return Status::error(std::string("socket: ") + std::strerror(errno));
  int yes = 1, no = 0;
  setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  int bound;
  if (ipv6) {
    // Both IPv4 and IPv6 clients.
    setsockopt(listener.fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_any;
    any.sin6_port = htons(uint16_t(port));
    bound = bind(listener.fd, reinterpret_cast<sockaddr *>(&any), sizeof any);
  } else {
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    any.sin_port = htons(uint16_t(port));
    bound = bind(listener.fd, reinterpret_cast<sockaddr *>(&any), sizeof any);
  }
  if (bound != 0 || listen(listener.fd, worldSize) != 0)
    return Status::error("rank 0 cannot listen on port " +
                         std::to_string(port) + ": " + std::strerror(errno));
  uint64_t length = bytes.size();
  for (int served = 1; served < worldSize; ++served) {
    pollfd waiting{listener.fd, POLLIN, 0};
    int left = millisecondsLeft(deadline);
    if (left == 0 || poll(&waiting, 1, left) <= 0)
      return Status::error("rank 0: only " + std::to_string(served - 1) +
                           " of " + std::to_string(worldSize - 1) +
                           " ranks connected to port " + std::to_string(port) +
                           " before the timeout");
    Socket client(accept(listener.fd, nullptr, nullptr));
    if (client.fd < 0)
      return Status::error(std::string("accept: ") + std::strerror(errno));
    std::vector<uint8_t> message(sizeof length);
    std::memcpy(message.data(), &length, sizeof length);
    message.insert(message.end(), bytes.begin(), bytes.end());
    if (!transfer(client.fd, message.data(), message.size(), true, deadline))
      return Status::error("rank 0: sending to a rank on port " +
                           std::to_string(port) + " failed");
  }
  return Status::success();
}

Status fetch(const std::string &address, int port, std::vector<uint8_t> &bytes,
             Clock::time_point deadline) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (int error = getaddrinfo(address.c_str(), std::to_string(port).c_str(),
                              &hints, &found))
    return Status::error("MASTER_ADDR " + address + ": " + gai_strerror(error));
  std::string lastError = "timed out";
  // Rank 0 may not listen yet: retry until the deadline.
  while (millisecondsLeft(deadline) > 0) {
    for (addrinfo *a = found; a; a = a->ai_next) {
      Socket connection(socket(a->ai_family, a->ai_socktype, a->ai_protocol));
      if (connection.fd < 0)
        continue;
      if (connect(connection.fd, a->ai_addr, a->ai_addrlen) != 0) {
        lastError = std::strerror(errno);
        continue;
      }
      uint64_t length = 0;
      if (!transfer(connection.fd, reinterpret_cast<uint8_t *>(&length),
                    sizeof length, false, deadline) ||
          length > (1u << 20)) {
        freeaddrinfo(found);
        return Status::error("reading from rank 0 at " + where(address, port) +
                             " failed");
      }
      bytes.assign(length, 0);
      bool ok = transfer(connection.fd, bytes.data(), length, false, deadline);
      freeaddrinfo(found);
      return ok ? Status::success()
                : Status::error("reading from rank 0 at " +
                                where(address, port) + " failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  freeaddrinfo(found);
  return Status::error("cannot reach rank 0 at " + where(address, port) +
                       " before the timeout (" + lastError + ")");
}

} // namespace

Status shareFromRankZero(int rank, int worldSize, const std::string &address,
                         int port, std::vector<uint8_t> &bytes,
                         double timeoutSeconds) {
  auto deadline =
      Clock::now() + std::chrono::milliseconds(int64_t(timeoutSeconds * 1000));
  if (rank == 0)
    return serve(worldSize, port, bytes, deadline);
  return fetch(address, port, bytes, deadline);
}

Status shareFromRankZero(const LaunchEnvironment &launch,
                         std::vector<uint8_t> &bytes, double timeoutSeconds) {
  if (launch.masterAddress.empty() || launch.masterPort <= 0)
    return Status::error("the ranks meet at MASTER_ADDR and MASTER_PORT, "
                         "which are not set");
  if (launch.masterPort >= 65535)
    return Status::error("MASTER_PORT=" + std::to_string(launch.masterPort) +
                         ": rank 0 listens on MASTER_PORT + 1, which is not a "
                         "port");
  return shareFromRankZero(launch.rank, launch.worldSize, launch.masterAddress,
                           launch.masterPort + 1, bytes, timeoutSeconds);
}

} // namespace lora::runtime
