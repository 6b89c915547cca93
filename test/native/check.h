// The checks shared by the core's C++ unit tests: count, print what failed, and end with the line CI reads.
#pragma once

#include <cstdio>
#include <string>

namespace check {
inline int passed = 0;
inline int failed = 0;

inline void record(bool ok, const char* file, int line, const std::string& what) {
  if (ok) {
    ++passed;
    return;
  }
  ++failed;
  std::fprintf(stderr, "%s:%d: %s\n", file, line, what.c_str());
}

// Prints "<name>: N passed, M failed" and returns the process's exit code.
inline int finish(const char* name) {
  std::printf("%s: %d passed, %d failed\n", name, passed, failed);
  return failed == 0 ? 0 : 1;
}
}  // namespace check

#define CHECK(cond) check::record(static_cast<bool>(cond), __FILE__, __LINE__, "CHECK failed: " #cond)

#define CHECK_EQ(a, b)                                                                               \
  do {                                                                                               \
    const std::string a_ = (a), b_ = (b);                                                            \
    check::record(a_ == b_, __FILE__, __LINE__, "expected [" + b_ + "] got [" + a_ + "]");           \
  } while (0)
