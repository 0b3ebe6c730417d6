//===- Launch.cpp - rank and world size from the launcher -----------------===//

#include "lora/runtime/Launch.h"

#include <cerrno>
#include <cstdlib>
#include <optional>

namespace lora::runtime {
namespace {

/// One launcher's view: which variables it names and what they hold.
struct Reading {
  const char *launcher;
  const char *rankName, *sizeName, *localName;
  std::optional<int> rank, size, local;
};

class Reader {
public:
  explicit Reader(const std::function<const char *(const char *)> &lookup)
      : lookup(lookup) {}

  /// The variable as a non-negative int; nullopt when unset.
  Status read(const char *name, std::optional<int> &value) const {
    value.reset();
    const char *text = lookup(name);
    if (!text)
      return Status::success();
    char *end = nullptr;
    errno = 0;
    long parsed = std::strtol(text, &end, 10);
    if (!*text || *end || errno || parsed < 0 || parsed > 1 << 30)
      return Status::error(std::string(name) + "='" + text +
                           "' is not a non-negative integer");
    value = int(parsed);
    return Status::success();
  }

  /// Reads a launcher's three variables. It is present when any is set;
  /// then all must be, with rank and local rank below the size.
  Status readLauncher(Reading &reading, bool &present) const {
    LORA_RETURN_IF_ERROR(read(reading.rankName, reading.rank));
    LORA_RETURN_IF_ERROR(read(reading.sizeName, reading.size));
    LORA_RETURN_IF_ERROR(read(reading.localName, reading.local));
    present = reading.rank || reading.size || reading.local;
    if (!present)
      return Status::success();
    for (auto [name, value] : {std::pair{reading.rankName, reading.rank},
                               std::pair{reading.sizeName, reading.size},
                               std::pair{reading.localName, reading.local}})
      if (!value)
        return Status::error(std::string(reading.launcher) +
                             " launch: " + name + " is not set (" +
                             reading.rankName + ", " + reading.sizeName +
                             " and " + reading.localName + " go together)");
    if (*reading.size < 1)
      return Status::error(std::string(reading.sizeName) + "=" +
                           std::to_string(*reading.size) +
                           ": the world size must be at least 1");
    if (*reading.rank >= *reading.size)
      return Status::error(std::string(reading.rankName) + "=" +
                           std::to_string(*reading.rank) + " is not below " +
                           reading.sizeName + "=" +
                           std::to_string(*reading.size));
    if (*reading.local >= *reading.size)
      return Status::error(std::string(reading.localName) + "=" +
                           std::to_string(*reading.local) + " is not below " +
                           reading.sizeName + "=" +
                           std::to_string(*reading.size));
    return Status::success();
  }

  const std::function<const char *(const char *)> &lookup;
};

Status agree(const Reading &inner, const Reading &outer) {
  auto check = [&](const char *innerName, int innerValue, const char *outerName,
                   int outerValue) -> Status {
    if (innerValue == outerValue)
      return Status::success();
    return Status::error(std::string("conflicting launcher variables: ") +
                         innerName + "=" + std::to_string(innerValue) +
                         " but " + outerName + "=" +
                         std::to_string(outerValue));
  };
  LORA_RETURN_IF_ERROR(
      check(inner.rankName, *inner.rank, outer.rankName, *outer.rank));
  LORA_RETURN_IF_ERROR(
      check(inner.sizeName, *inner.size, outer.sizeName, *outer.size));
  return check(inner.localName, *inner.local, outer.localName, *outer.local);
}

} // namespace

Status detectLaunch(const std::function<const char *(const char *)> &lookup,
                    LaunchEnvironment &launch) {
  launch = LaunchEnvironment();
  Reader reader(lookup);
  Reading mpi{"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
              "OMPI_COMM_WORLD_LOCAL_RANK"};
  Reading torch{"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"};
  Reading slurm{"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"};
  bool hasMpi = false, hasTorch = false, hasSlurm = false;
  LORA_RETURN_IF_ERROR(reader.readLauncher(mpi, hasMpi));
  LORA_RETURN_IF_ERROR(reader.readLauncher(torch, hasTorch));
  if (hasMpi && hasTorch)
    LORA_RETURN_IF_ERROR(agree(mpi, torch));
  if (!hasMpi && !hasTorch)
    LORA_RETURN_IF_ERROR(reader.readLauncher(slurm, hasSlurm));

  const Reading *chosen = hasMpi     ? &mpi
                          : hasTorch ? &torch
                          : hasSlurm ? &slurm
                                     : nullptr;
  if (!chosen)
    return Status::success();
  launch.launcher = chosen->launcher;
  launch.rank = *chosen->rank;
  launch.worldSize = *chosen->size;
  launch.localRank = *chosen->local;
  // Only a default for the thread count hangs on it: a value that is not
  // a positive integer counts as unknown rather than an error.
  const char *localSize = lookup(hasMpi     ? "OMPI_COMM_WORLD_LOCAL_SIZE"
                                 : hasTorch ? "LOCAL_WORLD_SIZE"
                                            : "SLURM_NTASKS_PER_NODE");
  char *end = nullptr;
  long processes = localSize ? std::strtol(localSize, &end, 10) : 0;
  launch.localWorldSize = localSize && *end == '\0' && processes > 0 &&
                                  processes <= launch.worldSize
                              ? int(processes)
                              : 0;

  // torchrun's rendezvous point: NCCL's id goes from rank 0 to the others
  // through it when there is no MPI.
  const char *address = lookup("MASTER_ADDR");
  std::optional<int> port;
  LORA_RETURN_IF_ERROR(reader.read("MASTER_PORT", port));
  if (hasTorch && !hasMpi && launch.worldSize > 1) {
    if (!address || !*address)
      return Status::error("torchrun launch: MASTER_ADDR is not set");
    if (!port)
      return Status::error("torchrun launch: MASTER_PORT is not set");
  }
  if (port && (*port < 1 || *port > 65535))
    return Status::error("MASTER_PORT=" + std::to_string(*port) +
                         " is not a port (1-65535)");
  if (address)
    launch.masterAddress = address;
  launch.masterPort = port.value_or(0);
  return Status::success();
}

Status detectLaunch(LaunchEnvironment &launch) {
  return detectLaunch([](const char *name) { return std::getenv(name); },
                      launch);
}

} // namespace lora::runtime
