//===- Launch.h - rank and world size from the launcher ---------*- C++ -*-===//
//
// Users start data-parallel runs with the launcher they already use; each
// tells a process who it is through environment variables:
//
//   torchrun-style  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   mpirun (Open MPI) OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//                   OMPI_COMM_WORLD_LOCAL_RANK
//   Slurm's srun    SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
//
// The innermost launcher wins: mpirun's variables over torchrun's over
// Slurm's (an mpirun or torchrun inside a Slurm allocation inherits the
// allocation's SLURM_* variables). Where mpirun's and torchrun's variables
// are both set they must agree. A missing, malformed or out-of-range value
// is an error naming the variable.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_LAUNCH_H
#define LORA_RUNTIME_LAUNCH_H

#include "lora/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <string>

namespace lora::runtime {

struct LaunchEnvironment {
  /// "single" (no launcher variables), "torchrun", "mpirun" or "slurm".
  std::string launcher = "single";
  int rank = 0, worldSize = 1, localRank = 0;
  /// Processes the launcher started on this machine (mpirun's
  /// OMPI_COMM_WORLD_LOCAL_SIZE, torchrun's LOCAL_WORLD_SIZE, Slurm's
  /// SLURM_NTASKS_PER_NODE); 0 when it does not say. 1 without a launcher.
  int localWorldSize = 1;
  /// torchrun's rendezvous address (empty elsewhere).
  std::string masterAddress;
  int masterPort = 0;

  bool distributed() const { return worldSize > 1; }
};

/// Reads the launcher's variables through `lookup` (nullptr: unset).
Status detectLaunch(const std::function<const char *(const char *)> &lookup,
                    LaunchEnvironment &launch);

/// detectLaunch on the process environment.
Status detectLaunch(LaunchEnvironment &launch);

} // namespace lora::runtime

#endif // LORA_RUNTIME_LAUNCH_H
