//===- adapter_grad.cpp - the one-pass adapter backward against 3 GEMMs ---===//
//
// lora-adapter-grad-bench [--tokens T] [--rank R] [--rounds N] [--layers L]
//                         [--shapes out:in,...]
//
// Times lora_adapter_grad_f32 (dU, dB and dA in one pass over dY and X)
// against the three GEMMs it replaces, each through lora_sgemm_f32 as a
// compiled step called them before (with the scaling passes the step ran),
// on the layer shapes of the benchmark model (bench/training_step.py:
// hidden 512, MLP 1376, 4 kv heads of 64) for `layers` layers. Every layer
// has buffers of its own, laid out as in a step ([dY | dU], [Y0 | U]), so
// the data comes from memory as in a step. Rounds alternate the two sides;
// each side's fastest round is kept. Prints a table and the ratio.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Layer {
  int64_t out, in;
  std::vector<float> dyu, y0u, b, x, db, da;
};

LoraMemRef2DF32 view(std::vector<float> &v, int64_t rows, int64_t columns,
                     int64_t ld, int64_t offset = 0) {
  return {v.data(), v.data(), offset, {rows, columns}, {ld, 1}};
}

int usage(const char *message) {
  std::fprintf(stderr,
               "lora-adapter-grad-bench: %s\nusage: lora-adapter-grad-bench "
               "[--tokens T] [--rank R] [--rounds N] [--layers L] "
               "[--shapes out:in,...]\n",
               message);
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  int64_t tokens = 2048, rank = 16, rounds = 10, layers = 4;
  std::string shapes = "512:512,256:512,256:512,512:512,1376:512,1376:512,"
                       "512:1376";
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc)
      return usage(("missing value after " + flag).c_str());
    const char *value = argv[++i];
    if (flag == "--tokens")
      tokens = std::atoll(value);
    else if (flag == "--rank")
      rank = std::atoll(value);
    else if (flag == "--rounds")
      rounds = std::atoll(value);
    else if (flag == "--layers")
      layers = std::atoll(value);
    else if (flag == "--shapes")
      shapes = value;
    else
      return usage(("unknown flag " + flag).c_str());
  }
  if (tokens <= 0 || rank <= 0 || rounds <= 0 || layers <= 0)
    return usage("--tokens, --rank, --rounds and --layers must be positive");

  std::vector<std::pair<int64_t, int64_t>> kinds;
  for (size_t begin = 0; begin < shapes.size();) {
    size_t end = shapes.find(',', begin);
    std::string item = shapes.substr(begin, end - begin);
    long long out = 0, in = 0;
    if (std::sscanf(item.c_str(), "%lld:%lld", &out, &in) != 2 || out <= 0 ||
        in <= 0)
      return usage(("bad shape '" + item + "' (want out:in)").c_str());
    kinds.push_back({out, in});
    begin = end == std::string::npos ? shapes.size() : end + 1;
  }

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  auto random = [&](size_t size) {
    std::vector<float> v(size);
    for (float &x : v)
      x = uniform(rng);
    return v;
  };
  std::vector<Layer> all;
  for (int64_t l = 0; l < layers; ++l)
    for (auto [out, in] : kinds)
      all.push_back({out, in, random(tokens * (out + rank)),
                     random(tokens * (out + rank)), random(out * rank),
                     random(tokens * in), std::vector<float>(out * rank),
                     std::vector<float>(rank * in)});

  lora::runtime::configureThreads(1);
  const float scale = 2.0f;
  auto fused = [&](Layer &l) {
    int64_t wide = l.out + rank;
    LoraMemRef2DF32 dy = view(l.dyu, tokens, l.out, wide),
                    du = view(l.dyu, tokens, rank, wide, l.out),
                    u = view(l.y0u, tokens, rank, wide, l.out),
                    b = view(l.b, l.out, rank, rank),
                    x = view(l.x, tokens, l.in, l.in),
                    db = view(l.db, l.out, rank, rank),
                    da = view(l.da, rank, l.in, l.in);
    _mlir_ciface_lora_adapter_grad_f32(scale, &dy, &b, &u, &x, &du, &db, &da);
  };
  // As the step ran them: each GEMM into a buffer of its own, then a
  // scaling pass into its place (dU into [dY | dU]).
  int64_t widest = 0;
  for (auto [out, in] : kinds)
    widest = std::max(widest, out);
  std::vector<float> duTemp(tokens * rank), dbTemp(widest * rank);
  auto separate = [&](Layer &l) {
    int64_t wide = l.out + rank;
    LoraMemRef2DF32 dy = view(l.dyu, tokens, l.out, wide),
                    du = view(l.dyu, tokens, rank, wide, l.out),
                    duT = view(duTemp, tokens, rank, rank),
                    u = view(l.y0u, tokens, rank, wide, l.out),
                    b = view(l.b, l.out, rank, rank),
                    x = view(l.x, tokens, l.in, l.in),
                    dbT = view(dbTemp, l.out, rank, rank),
                    da = view(l.da, rank, l.in, l.in);
    _mlir_ciface_lora_sgemm_f32(1, 0, 0, &dy, &u, &dbT);
    for (int64_t i = 0; i < l.out * rank; ++i)
      l.db[i] = scale * dbTemp[i];
    _mlir_ciface_lora_sgemm_f32(0, 0, 0, &dy, &b, &duT);
    for (int64_t i = 0; i < tokens; ++i)
      for (int64_t j = 0; j < rank; ++j)
        l.dyu[i * wide + l.out + j] = scale * duTemp[i * rank + j];
    _mlir_ciface_lora_sgemm_f32(1, 0, 0, &du, &x, &da);
  };

  std::vector<double> bestFused(kinds.size(), 1e30),
      bestSeparate(kinds.size(), 1e30);
  double totalFused = 1e30, totalSeparate = 1e30;
  for (int64_t round = 0; round < rounds; ++round)
    for (int side = 0; side < 2; ++side) {
      std::vector<double> perKind(kinds.size(), 0);
      double total = 0;
      for (size_t i = 0; i < all.size(); ++i) {
        auto start = std::chrono::steady_clock::now();
        if (side == 0)
          fused(all[i]);
        else
          separate(all[i]);
        double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
        perKind[i % kinds.size()] += seconds;
        total += seconds;
      }
      auto &best = side == 0 ? bestFused : bestSeparate;
      for (size_t k = 0; k < kinds.size(); ++k)
        best[k] = std::min(best[k], perKind[k]);
      double &bestTotal = side == 0 ? totalFused : totalSeparate;
      bestTotal = std::min(bestTotal, total);
    }

  std::printf("tokens %lld, rank %lld, %lld layers; fused kernel: %s\n",
              (long long)tokens, (long long)rank, (long long)layers,
              lora::runtime::adapterGradFused(rank) ? "yes" : "no (3 GEMMs)");
  std::printf("| out x in | 3 GEMMs (ms) | one pass (ms) | ratio |\n"
              "|---|---|---|---|\n");
  for (size_t k = 0; k < kinds.size(); ++k)
    std::printf("| %lld x %lld | %.3f | %.3f | %.2fx |\n",
                (long long)kinds[k].first, (long long)kinds[k].second,
                bestSeparate[k] * 1e3, bestFused[k] * 1e3,
                bestSeparate[k] / bestFused[k]);
  std::printf("| all (fastest round) | %.3f | %.3f | %.2fx |\n",
              totalSeparate * 1e3, totalFused * 1e3,
              totalSeparate / totalFused);
  return 0;
}
