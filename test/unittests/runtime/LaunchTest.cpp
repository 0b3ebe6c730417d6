//===- LaunchTest.cpp - rank and world size from launcher variables -------===//

#include "lora/runtime/Launch.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace lora::runtime;

namespace {

Status detect(const std::map<std::string, std::string> &variables,
              LaunchEnvironment &launch) {
  return detectLaunch(
      [&](const char *name) -> const char * {
        auto it = variables.find(name);
        return it == variables.end() ? nullptr : it->second.c_str();
      },
      launch);
}

TEST(LaunchTest, NoLauncherIsOneProcess) {
  LaunchEnvironment launch;
  ASSERT_TRUE(detect({}, launch).ok());
  EXPECT_EQ(launch.launcher, "single");
  EXPECT_EQ(launch.worldSize, 1);
  EXPECT_FALSE(launch.distributed());
}

TEST(LaunchTest, Torchrun) {
  LaunchEnvironment launch;
  Status status = detect({{"RANK", "3"},
                          {"WORLD_SIZE", "8"},
                          {"LOCAL_RANK", "1"},
                          {"MASTER_ADDR", "node0"},
                          {"MASTER_PORT", "29500"}},
                         launch);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(launch.launcher, "torchrun");
  EXPECT_EQ(launch.rank, 3);
  EXPECT_EQ(launch.worldSize, 8);
  EXPECT_EQ(launch.localRank, 1);
  EXPECT_EQ(launch.masterAddress, "node0");
  EXPECT_EQ(launch.masterPort, 29500);
  EXPECT_TRUE(launch.distributed());
}

TEST(LaunchTest, Mpirun) {
  LaunchEnvironment launch;
  Status status = detect({{"OMPI_COMM_WORLD_RANK", "1"},
                          {"OMPI_COMM_WORLD_SIZE", "2"},
                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}},
                         launch);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(launch.launcher, "mpirun");
  EXPECT_EQ(launch.rank, 1);
  EXPECT_EQ(launch.worldSize, 2);
}

TEST(LaunchTest, Slurm) {
  LaunchEnvironment launch;
  Status status = detect(
      {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"}},
      launch);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(launch.launcher, "slurm");
  EXPECT_EQ(launch.rank, 5);
  EXPECT_EQ(launch.worldSize, 16);
  EXPECT_EQ(launch.localRank, 1);
}

// The processes on this machine (the thread count's default divides the
// cores among them): each launcher's own variable; unknown (0) when unset
// or not a positive count no larger than the world.
TEST(LaunchTest, ProcessesOnThisMachine) {
  LaunchEnvironment launch;
  ASSERT_TRUE(detect({}, launch).ok());
  EXPECT_EQ(launch.localWorldSize, 1);
  ASSERT_TRUE(detect({{"OMPI_COMM_WORLD_RANK", "1"},
                      {"OMPI_COMM_WORLD_SIZE", "4"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}},
                     launch)
                  .ok());
  EXPECT_EQ(launch.localWorldSize, 2);
  ASSERT_TRUE(detect({{"RANK", "0"},
                      {"WORLD_SIZE", "8"},
                      {"LOCAL_RANK", "0"},
                      {"LOCAL_WORLD_SIZE", "4"},
                      {"MASTER_ADDR", "node0"},
                      {"MASTER_PORT", "29500"}},
                     launch)
                  .ok());
  EXPECT_EQ(launch.localWorldSize, 4);
  ASSERT_TRUE(detect({{"SLURM_PROCID", "0"},
                      {"SLURM_NTASKS", "16"},
                      {"SLURM_LOCALID", "0"},
                      {"SLURM_NTASKS_PER_NODE", "8"}},
                     launch)
                  .ok());
  EXPECT_EQ(launch.localWorldSize, 8);
  for (const char *bad : {"", "2(x3)", "0", "-1", "17"}) {
    ASSERT_TRUE(detect({{"SLURM_PROCID", "0"},
                        {"SLURM_NTASKS", "16"},
                        {"SLURM_LOCALID", "0"},
                        {"SLURM_NTASKS_PER_NODE", bad}},
                       launch)
                    .ok());
    EXPECT_EQ(launch.localWorldSize, 0) << bad;
  }
  ASSERT_TRUE(detect({{"OMPI_COMM_WORLD_RANK", "0"},
                      {"OMPI_COMM_WORLD_SIZE", "2"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}},
                     launch)
                  .ok());
  EXPECT_EQ(launch.localWorldSize, 0);
}

TEST(LaunchTest, InnermostLauncherWinsOverSlurm) {
  // torchrun inside a Slurm allocation: the allocation's SLURM_PROCID is
  // the node's, RANK the process's.
  LaunchEnvironment launch;
  Status status = detect({{"SLURM_PROCID", "0"},
                          {"SLURM_NTASKS", "2"},
                          {"SLURM_LOCALID", "0"},
                          {"RANK", "5"},
                          {"WORLD_SIZE", "8"},
                          {"LOCAL_RANK", "1"},
                          {"MASTER_ADDR", "n0"},
                          {"MASTER_PORT", "1234"}},
                         launch);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(launch.launcher, "torchrun");
  EXPECT_EQ(launch.rank, 5);
}

TEST(LaunchTest, AgreeingMpirunAndTorchrunVariables) {
  LaunchEnvironment launch;
  Status status = detect({{"OMPI_COMM_WORLD_RANK", "1"},
                          {"OMPI_COMM_WORLD_SIZE", "2"},
                          {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                          {"RANK", "1"},
                          {"WORLD_SIZE", "2"},
                          {"LOCAL_RANK", "0"}},
                         launch);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(launch.launcher, "mpirun");
}

struct Rejected {
  std::map<std::string, std::string> variables;
  std::string message;
};

void PrintTo(const Rejected &rejected, std::ostream *os) {
  *os << rejected.message;
}

class LaunchRejectTest : public testing::TestWithParam<Rejected> {};

TEST_P(LaunchRejectTest, NamesTheVariable) {
  LaunchEnvironment launch;
  Status status = detect(GetParam().variables, launch);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Launch, LaunchRejectTest,
    testing::Values(
        Rejected{{{"RANK", "0"}, {"WORLD_SIZE", "2"}},
                 "torchrun launch: LOCAL_RANK is not set (RANK, WORLD_SIZE "
                 "and LOCAL_RANK go together)"},
        Rejected{{{"RANK", "2"},
                  {"WORLD_SIZE", "2"},
                  {"LOCAL_RANK", "0"},
                  {"MASTER_ADDR", "a"},
                  {"MASTER_PORT", "1"}},
                 "RANK=2 is not below WORLD_SIZE=2"},
        Rejected{{{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}},
                 "RANK='x' is not a non-negative integer"},
        Rejected{{{"RANK", "-1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}},
                 "RANK='-1' is not a non-negative integer"},
        Rejected{{{"OMPI_COMM_WORLD_RANK", "0"},
                  {"OMPI_COMM_WORLD_SIZE", "0"},
                  {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}},
                 "OMPI_COMM_WORLD_SIZE=0: the world size must be at least 1"},
        Rejected{{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}},
                 "torchrun launch: MASTER_ADDR is not set"},
        Rejected{{{"RANK", "0"},
                  {"WORLD_SIZE", "2"},
                  {"LOCAL_RANK", "0"},
                  {"MASTER_ADDR", "n0"}},
                 "torchrun launch: MASTER_PORT is not set"},
        Rejected{{{"RANK", "0"},
                  {"WORLD_SIZE", "2"},
                  {"LOCAL_RANK", "0"},
                  {"MASTER_ADDR", "n0"},
                  {"MASTER_PORT", "70000"}},
                 "MASTER_PORT=70000 is not a port (1-65535)"},
        Rejected{{{"OMPI_COMM_WORLD_RANK", "1"},
                  {"OMPI_COMM_WORLD_SIZE", "2"},
                  {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                  {"RANK", "0"},
                  {"WORLD_SIZE", "2"},
                  {"LOCAL_RANK", "0"}},
                 "conflicting launcher variables: OMPI_COMM_WORLD_RANK=1 but "
                 "RANK=0"},
        Rejected{{{"SLURM_PROCID", "4"},
                  {"SLURM_NTASKS", "4"},
                  {"SLURM_LOCALID", "0"}},
                 "SLURM_PROCID=4 is not below SLURM_NTASKS=4"},
        Rejected{{{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}},
                 "slurm launch: SLURM_LOCALID is not set (SLURM_PROCID, "
                 "SLURM_NTASKS and SLURM_LOCALID go together)"}));

} // namespace
