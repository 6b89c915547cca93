/* Linked only into the prebuilt binary (PGADAPTER_STATIC_RUNTIME). The static libstdc++ built on glibc
 * 2.36 seeds std::random_device with arc4random, which older glibc lacks; -Wl,--wrap=arc4random sends
 * that call here, to getrandom (glibc 2.25), so the binary loads on glibc 2.34 (Ubuntu 22.04, RHEL 9). */
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

uint32_t __wrap_arc4random(void) {
  uint32_t value;
  size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom((char*)&value + got, sizeof value - got, 0);
    if (n > 0) {
      got += (size_t)n;
    } else if (n < 0) {
      /* Only EINTR (or ENOSYS on kernels older than 3.17): fall back to the clock, enough for a seed. */
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
    }
  }
  return value;
}
