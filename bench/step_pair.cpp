//===- step_pair.cpp - compiled steps, timed step by step, interleaved ----===//
//
// lora-step-pair DIR_A DIR_B [DIR_C ...] [--rounds N] [--warmup W]
//                [--settle S]
//
// Row a of bench/training_step.py compares the LoRA steps' times with the
// frozen step's. Run as separate processes seconds apart, they drift with
// this shared machine's phases by more than the adapter costs. Here all
// artifacts live in one process and each round runs every step once, so
// the steps of a round see the same machine. The order turns with the
// rounds (A B C, B C A, C A B, then the same backwards: C B A, ...), so no
// step always runs right after the same other one. With --settle S, each
// step runs S times untimed right before its timed run: timed as in
// training, where a step follows itself.
// The arguments are laid out as lora-train lays them out
// (lora::runtime::bufferOffsets, so [W; A] is read in place) and filled
// with random values:
// parameters in ±0.02, second moments positive, token ids below the
// vocabulary. Results are not fed back: every step runs the same
// arguments, which is the same work. Prints one JSON object, one key per
// folder in order:
//
//   {"a": [seconds, ...], "b": [seconds, ...], ...}
//
// with a[i], b[i], ... from round i.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Artifact.h"
#include "lora/runtime/DType.h"
#include "lora/runtime/Gemm.h"
#include "lora/runtime/Trainer.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace rt = lora::runtime;

namespace {

int usage(const std::string &message) {
  std::fprintf(stderr,
               "lora-step-pair: %s\nusage: lora-step-pair DIR_A DIR_B "
               "[DIR_C ...] [--rounds N] [--warmup W] [--settle S]\n",
               message.c_str());
  return 2;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// One step's buffers: arguments and results each in one 64-byte aligned
/// block, laid out as the trainer lays them out.
struct Buffers {
  std::vector<std::unique_ptr<uint8_t, decltype(&std::free)>> blocks;
  std::vector<void *> arguments, results;
};

std::vector<void *> layOut(const std::vector<rt::BufferInfo> &infos,
                           Buffers &buffers) {
  size_t total = 0;
  std::vector<size_t> offsets = rt::bufferOffsets(infos, total);
  auto *block = static_cast<uint8_t *>(std::aligned_alloc(64, total + 64));
  if (!block) {
    std::fprintf(stderr, "lora-step-pair: cannot allocate %zu bytes\n",
                 total + 64);
    std::exit(1);
  }
  std::memset(block, 0, total + 64);
  buffers.blocks.emplace_back(block, &std::free);
  std::vector<void *> pointers;
  for (size_t offset : offsets)
    pointers.push_back(block + offset);
  return pointers;
}

void fill(const std::vector<rt::BufferInfo> &infos,
          const std::vector<void *> &pointers, std::mt19937_64 &rng) {
  int64_t vocabulary = 2;
  for (const rt::BufferInfo &info : infos)
    if (endsWith(info.name, "embed_tokens.weight") && !info.shape.empty())
      vocabulary = info.shape[0];
  std::uniform_real_distribution<float> uniform(-0.02f, 0.02f);
  for (size_t i = 0; i < infos.size(); ++i) {
    const rt::BufferInfo &info = infos[i];
    int64_t n = info.numElements();
    if (info.dtype == rt::DType::F32) {
      auto *p = static_cast<float *>(pointers[i]);
      for (int64_t j = 0; j < n; ++j)
        p[j] = info.name == "lr"                    ? 1e-5f
               : endsWith(info.name, "exp_avg_sq") ? 1e-4f + std::abs(uniform(rng))
                                                   : uniform(rng);
    } else if (info.dtype == rt::DType::I32) {
      auto *p = static_cast<int32_t *>(pointers[i]);
      int64_t sequence = info.shape.empty() ? 1 : info.shape.back();
      for (int64_t j = 0; j < n; ++j)
        p[j] = info.name == "positions" ? int32_t(j % sequence)
                                        : int32_t(rng() % uint64_t(vocabulary));
    } else if (info.dtype == rt::DType::I64) {
      auto *p = static_cast<int64_t *>(pointers[i]);
      for (int64_t j = 0; j < n; ++j)
        p[j] = info.name == "dropout_seed" ? 42 : 1;
    }
  }
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> directories;
  long rounds = 20, warmup = 2, settle = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rounds" || arg == "--warmup" || arg == "--settle") {
      if (i + 1 >= argc)
        return usage("missing value after " + arg);
      long value = std::atol(argv[++i]);
      if (value < (arg == "--rounds" ? 1 : 0))
        return usage(arg + " must be " +
                     (arg == "--rounds" ? "positive" : "at least 0"));
      (arg == "--rounds" ? rounds : arg == "--warmup" ? warmup : settle) =
          value;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown flag " + arg);
    } else {
      directories.push_back(arg);
    }
  }
  if (directories.size() < 2 || directories.size() > 26)
    return usage("give 2 to 26 artifact folders (lora-run compile -o DIR)");

  rt::configureThreads(1);
  size_t count = directories.size();
  std::vector<std::unique_ptr<rt::ArtifactStep>> steps(count);
  std::vector<Buffers> buffers(count);
  std::mt19937_64 rng(7);
  for (size_t s = 0; s < count; ++s) {
    if (rt::Status status = rt::ArtifactStep::open(directories[s], steps[s]);
        !status.ok()) {
      std::fprintf(stderr, "lora-step-pair: %s: %s\n", directories[s].c_str(),
                   status.message().c_str());
      return 1;
    }
    if (steps[s]->runsOnGpu()) {
      std::fprintf(stderr, "lora-step-pair: %s is a GPU step; this times "
                           "CPU steps\n",
                   directories[s].c_str());
      return 1;
    }
    buffers[s].arguments = layOut(steps[s]->arguments(), buffers[s]);
    buffers[s].results = layOut(steps[s]->results(), buffers[s]);
    fill(steps[s]->arguments(), buffers[s].arguments, rng);
  }
  auto run = [&](size_t s) {
    auto start = std::chrono::steady_clock::now();
    if (rt::Status status =
            steps[s]->run(buffers[s].arguments, buffers[s].results);
        !status.ok()) {
      std::fprintf(stderr, "lora-step-pair: %s: %s\n", directories[s].c_str(),
                   status.message().c_str());
      std::exit(1);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start)
        .count();
  };
  for (long i = 0; i < warmup; ++i)
    for (size_t s = 0; s < count; ++s)
      run(s);
  std::vector<std::vector<double>> seconds(count);
  for (long round = 0; round < rounds; ++round) {
    // Rotated by the round, backwards every other cycle of rotations (two
    // steps: A B, B A, B A, A B; three: all six orders in six rounds).
    size_t shift = size_t(round) % count;
    bool backwards = (size_t(round) / count) % 2 == 1;
    for (size_t i = 0; i < count; ++i) {
      size_t s = (shift + (backwards ? count - 1 - i : i)) % count;
      for (long j = 0; j < settle; ++j)
        run(s);
      seconds[s].push_back(run(s));
    }
  }
  std::printf("{");
  for (size_t s = 0; s < count; ++s) {
    std::printf("%s\"%c\": [", s ? ", " : "", char('a' + s));
    for (size_t i = 0; i < seconds[s].size(); ++i)
      std::printf("%s%.6f", i ? ", " : "", seconds[s][i]);
    std::printf("]");
  }
  std::printf("}\n");
  return 0;
}
