//===- Rendezvous.h - bytes from rank 0 to every rank over TCP --*- C++ -*-===//
//
// How NCCL's unique id reaches the ranks of a torchrun-style launch, which
// has no MPI: rank 0 listens on MASTER_PORT + 1 (torchrun's own store holds
// MASTER_PORT) and sends the bytes to each rank that connects to
// MASTER_ADDR; the others retry until rank 0 listens. Everything is bounded
// by a timeout, and errors name the address and port.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_RENDEZVOUS_H
#define LORA_RUNTIME_RENDEZVOUS_H

#include "lora/runtime/Launch.h"
#include "lora/runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lora::runtime {

/// Rank 0 sends `bytes` to the other `worldSize` - 1 ranks; they receive
/// them into `bytes`. `port` is where rank 0 listens.
Status shareFromRankZero(int rank, int worldSize, const std::string &address,
                         int port, std::vector<uint8_t> &bytes,
                         double timeoutSeconds);

/// shareFromRankZero at MASTER_ADDR : MASTER_PORT + 1.
Status shareFromRankZero(const LaunchEnvironment &launch,
                         std::vector<uint8_t> &bytes, double timeoutSeconds);

} // namespace lora::runtime

#endif // LORA_RUNTIME_RENDEZVOUS_H
