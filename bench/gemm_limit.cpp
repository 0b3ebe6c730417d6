//===- gemm_limit.cpp - OpenBLAS sgemm alone on a step's GEMM shapes ------===//
//
// Reads the table LORA_GEMM_TRACE wrote for a training run (one JSON object
// per line: m, n, k, ta, tb, accumulate, calls, seconds) and times
// cblas_sgemm (beta 1 where the step accumulated, else 0) on each
// shape alone, on contiguous operands, through the same OpenBLAS and thread
// count. Prints one JSON object: the GEMM FLOPs per step, the seconds the
// traced run spent in GEMMs per step and the seconds sgemm alone needs for
// the same GEMMs per step (the step's GEMM limit).
//
//   lora-gemm-limit TRACE STEPS
//
//===----------------------------------------------------------------------===//

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Shape {
  long long m = 0, n = 0, k = 0, calls = 0;
  int ta = 0, tb = 0, accumulate = 1;
  double seconds = 0;
};

/// The number after "key": in a flat JSON line written by GemmTrace.
bool field(const std::string &line, const char *key, double &value) {
  std::string quoted = std::string("\"") + key + "\":";
  size_t at = line.find(quoted);
  if (at == std::string::npos)
    return false;
  value = std::strtod(line.c_str() + at + quoted.size(), nullptr);
  return true;
}

double timeSgemm(const Shape &s) {
  std::vector<float> a(size_t(s.m * s.k), 0.5f), b(size_t(s.k * s.n), 0.25f),
      c(size_t(s.m * s.n), 0.0f);
  int lda = s.ta ? int(s.m) : int(s.k), ldb = s.tb ? int(s.k) : int(s.n);
  auto once = [&] {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans,
                s.tb ? CblasTrans : CblasNoTrans, int(s.m), int(s.n),
                int(s.k), 1.0f, a.data(), lda, b.data(), ldb,
                s.accumulate ? 1.0f : 0.0f, c.data(),
                int(s.n));
  };
  once(); // warm
  // Repeat until ~20 ms have passed; the median of 5 such rounds.
  std::vector<double> rounds;
  for (int round = 0; round < 5; ++round) {
    int repeats = 0;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < 0.02) {
      once();
      ++repeats;
      elapsed = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    }
    rounds.push_back(elapsed / repeats);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TRACE STEPS\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "lora-gemm-limit: cannot read %s\n", argv[1]);
    return 1;
  }
  double steps = std::strtod(argv[2], nullptr);
  if (!(steps > 0)) {
    std::fprintf(stderr, "lora-gemm-limit: STEPS must be > 0, got %s\n",
                 argv[2]);
    return 2;
  }
  std::vector<Shape> shapes;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty())
      continue;
    double m, n, k, ta, tb, calls, seconds;
    if (!field(line, "m", m) || !field(line, "n", n) || !field(line, "k", k) ||
        !field(line, "ta", ta) || !field(line, "tb", tb) ||
        !field(line, "calls", calls) || !field(line, "seconds", seconds)) {
      std::fprintf(stderr, "lora-gemm-limit: %s:%d: not a GEMM trace line\n",
                   argv[1], number);
      return 1;
    }
    double accumulate = 1; // traces written before the flag existed
    field(line, "accumulate", accumulate);
    shapes.push_back({(long long)m, (long long)n, (long long)k,
                      (long long)calls, int(ta), int(tb), int(accumulate),
                      seconds});
  }
  double flops = 0, traced = 0, alone = 0;
  for (const Shape &s : shapes) {
    flops += 2.0 * double(s.m) * double(s.n) * double(s.k) * double(s.calls);
    traced += s.seconds;
    alone += timeSgemm(s) * double(s.calls);
  }
  std::printf("{\"shapes\": %zu, \"gemm_flops_per_step\": %.6e, "
              "\"traced_gemm_seconds_per_step\": %.6f, "
              "\"sgemm_alone_seconds_per_step\": %.6f}\n",
              shapes.size(), flops / steps, traced / steps, alone / steps);
  return 0;
}
