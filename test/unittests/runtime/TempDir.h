//===- TempDir.h - a fresh folder per test ---------------------*- C++ -*-===//

#ifndef LORA_TEST_UNITTESTS_RUNTIME_TEMPDIR_H
#define LORA_TEST_UNITTESTS_RUNTIME_TEMPDIR_H

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <unistd.h>

namespace lora::test {

/// A fixture whose `dir` is a fresh folder named after the test, removed
/// afterwards.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = std::filesystem::temp_directory_path() /
          ("lora-" + std::string(info->test_suite_name()) + "-" + info->name() +
           "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::filesystem::path dir;
};

} // namespace lora::test

#endif // LORA_TEST_UNITTESTS_RUNTIME_TEMPDIR_H
