/*
 * A freestanding guest program for pinbox's end-to-end core test: formatting, sorting,
 * checksums, 64/128-bit arithmetic, a jump table, recursion and function pointers. Built twice by
 * build.sh: as a flat image for the core (gcc -O2 -mgeneral-regs-only -mno-red-zone
 * -ffreestanding -nostdlib) and as a host program whose output is the expected result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HOSTED
/* The compiler may call these even in freestanding code (struct copies, zeroing). */
void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
#endif

struct sink {
  char *buf;
  size_t len;
};

static void put(struct sink *s, char c) { s->buf[s->len++] = c; }

static void put_unsigned(struct sink *s, uint64_t v, unsigned base, int width, char pad) {
  char tmp[32];
  int n = 0;
  do {
    unsigned d = (unsigned)(v % base);
    tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v != 0);
  while (n < width) tmp[n++] = pad;
  while (n > 0) put(s, tmp[--n]);
}

/* A small printf: %d %u %x %s %c %%, with l/ll and a zero-padded width. */
static void format(struct sink *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      put(s, *p);
      continue;
    }
    p++;
    char pad = ' ';
    int width = 0;
    if (*p == '0') pad = '0';
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    int longs = 0;
    while (*p == 'l') longs++, p++;
    switch (*p) {
      case 'd': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        if (v < 0) put(s, '-'), v = -v;
        put_unsigned(s, (uint64_t)v, 10, width, pad);
        break;
      }
      case 'u': put_unsigned(s, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad); break;
      case 'x': put_unsigned(s, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad); break;
      case 's': for (const char *q = va_arg(ap, const char *); *q; q++) put(s, *q); break;
      case 'c': put(s, (char)va_arg(ap, int)); break;
      default: put(s, *p); break;
    }
  }
  va_end(ap);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t next_random(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static void quicksort(int64_t *a, long lo, long hi) {
  while (lo < hi) {
    int64_t pivot = a[(lo + hi) / 2];
    long i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        int64_t t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (j - lo < hi - i) {
      quicksort(a, lo, j);
      lo = i;
    } else {
      quicksort(a, i, hi);
      hi = j;
    }
  }
}

static uint32_t crc32(const unsigned char *p, size_t n) {
  uint32_t crc = 0xffffffffu;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
  }
  return ~crc;
}

static const char *weekday(int d) {
  switch (d) {
    case 0: return "sun";
    case 1: return "mon";
    case 2: return "tue";
    case 3: return "wed";
    case 4: return "thu";
    case 5: return "fri";
    case 6: return "sat";
    default: return "???";
  }
}

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static int64_t apply(int64_t (*f)(int64_t, int64_t), int64_t a, int64_t b) { return f(a, b); }
static int64_t op_div(int64_t a, int64_t b) { return a / b; }
static int64_t op_mod(int64_t a, int64_t b) { return a % b; }
static int64_t op_mulhi(int64_t a, int64_t b) { return (int64_t)(((__int128)a * b) >> 64); }

static int64_t numbers[300];

size_t run(char *out) {
  struct sink s = { out, 0 };
  format(&s, "hello from the guest: %d %u %x %s %c %%\n", -42, 42u, 0xbeefu, "ok", '!');
  format(&s, "wide: %lld %llu %llx %016llx\n", (long long)INT64_MIN, (unsigned long long)UINT64_MAX,
         0x0123456789abcdefULL, 0xfeULL);

  for (int k = 0; k < 300; k++) numbers[k] = (int64_t)next_random() >> (k % 40);
  quicksort(numbers, 0, 299);
  int sorted = 1;
  for (int k = 1; k < 300; k++) sorted &= numbers[k - 1] <= numbers[k];
  format(&s, "sorted=%d min=%lld max=%lld median=%lld\n", sorted, (long long)numbers[0], (long long)numbers[299],
         (long long)numbers[150]);
  format(&s, "crc32=%08x\n", crc32((const unsigned char *)numbers, sizeof numbers));

  uint64_t u = 0xfedcba9876543210ULL;
  for (int k = 1; k <= 5; k++) {
    format(&s, "%llu/%d=%llu r%llu; ", (unsigned long long)u, k * 7, (unsigned long long)(u / (uint64_t)(k * 7)),
           (unsigned long long)(u % (uint64_t)(k * 7)));
    u = u * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  format(&s, "\n");
  for (int d = -1; d < 8; d++) format(&s, "%s ", weekday(d));
  format(&s, "\nfib(20)=%ld\n", fib(20));
  format(&s, "div=%lld mod=%lld mulhi=%lld\n", (long long)apply(op_div, -1000000007LL, 97),
         (long long)apply(op_mod, -1000000007LL, 97), (long long)apply(op_mulhi, INT64_MAX, -3));
  unsigned bits = 0;
  uint64_t mix = 0;
  for (int k = 0; k < 300; k++) {
    uint64_t v = (uint64_t)numbers[k] | 1ULL << 63;
    bits += (unsigned)__builtin_ctzll(v | 1ULL << 40) + (unsigned)__builtin_clzll(v >> (k % 63));
    mix ^= __builtin_bswap64(v) + (uint64_t)((unsigned __int128)v * 0x9e3779b97f4a7c15ULL >> 64);
  }
  format(&s, "bits=%u mix=%llx\n", bits, (unsigned long long)mix);
  return s.len;
}

#ifdef HOSTED
#include <stdio.h>
int main(void) {
  static char out[8192];
  size_t n = run(out);
  fwrite(out, 1, n, stdout);
  return 0;
}
#else
static char output[8192];
__attribute__((section(".text.start"), noreturn)) void _start(void) {
  size_t n = run(output);
  __asm__ volatile("hlt" : : "a"(output), "b"(n) : "memory");
  for (;;) __asm__ volatile("hlt");
}
#endif
