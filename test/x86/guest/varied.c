/*
 * A varied freestanding program for test/x86/gcc-opt-levels.test.ts, which compiles it at test
 * time at -O0, -O2 and -Os (general registers only, -mcx16) and runs each image on the core, and
 * compiles it for the host (-DHOSTED) to know what it must print. It reaches for what a
 * compiler emits from ordinary kernel-style C: 8/16/32/64/128-bit arithmetic and division,
 * signed and unsigned conversions, bit-fields, struct copies and returns, switch tables,
 * variable-length arrays, atomics of every width (CMPXCHG16B included), overflow builtins, bit
 * builtins, recursion, function pointers and loops the optimiser unrolls or vectorises away.
 */
#include <stdint.h>
#include <stddef.h>

#ifndef HOSTED
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}
void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
#endif

static char *out;
static size_t outlen;

static void emit(const char *name, uint64_t v) {
  while (*name) out[outlen++] = *name++;
  out[outlen++] = '=';
  for (int k = 60; k >= 0; k -= 4) out[outlen++] = "0123456789abcdef"[(v >> k) & 15];
  out[outlen++] = '\n';
}

struct big { uint64_t a[9]; uint8_t tail[13]; };
struct bits { uint32_t a : 3, b : 7, c : 13; int32_t d : 9; };

__attribute__((noinline)) static struct big twist(struct big b) {
  struct big c = b;
  for (int k = 0; k < 9; k++) c.a[k] = c.a[k] * 31 + b.a[(k + 4) % 9];
  c.tail[12] ^= (uint8_t)c.a[2];
  return c;
}

__attribute__((noinline)) static int classify(int x) {
  switch (x) {
    case 0: return 5; case 1: return 9; case 2: return 11; case 3: return 99; case 4: return 7;
    case 5: return 1; case 6: return 3; case 7: return 42; case 9: return -4; default: return -1;
  }
}

__attribute__((noinline)) static uint64_t vla_sum(int n) {
  uint64_t a[n];
  for (int i = 0; i < n; i++) a[i] = (uint64_t)i * i + 3;
  uint64_t s = 0;
  for (int i = n - 1; i >= 0; i--) s = s * 3 + a[i];
  return s;
}

static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

typedef uint64_t (*op_fn)(uint64_t, uint64_t);
static uint64_t op_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t op_rot(uint64_t a, uint64_t b) { return (a << (b & 63)) | (a >> ((64 - (b & 63)) & 63)); }
static uint64_t op_mulhi(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 64); }

static size_t run(char *buffer) {
  out = buffer;
  outlen = 0;
  volatile uint64_t seed = 0x9e3779b97f4a7c15ULL;
  uint64_t x = seed;

  /* Narrow arithmetic and conversions. */
  int8_t s8 = (int8_t)x;
  uint16_t u16 = (uint16_t)(x >> 17);
  int16_t s16 = (int16_t)(x >> 3);
  emit("s8", (uint64_t)(int64_t)(s8 * 3 / 7));
  emit("u16", (uint16_t)(u16 * u16 + (u16 >> 3)));
  emit("s16", (uint64_t)(int64_t)(s16 / -13 + s16 % 11));
  emit("u32", (uint32_t)x / 12345u + (uint32_t)x % 99u);
  emit("i64", (uint64_t)((int64_t)x / -1000003 + (int64_t)x % 77));

  /* 128-bit. */
  unsigned __int128 w = (unsigned __int128)x * 0xfedcba9876543210ULL;
  __int128 sw = (__int128)(int64_t)x * -7;
  emit("u128hi", (uint64_t)(w >> 64));
  emit("u128div", (uint64_t)(w / 0x123456789ULL));
  emit("s128", (uint64_t)(sw >> 3));

  /* Bit-fields and struct copies. */
  struct bits bf = { .a = 5, .b = 100, .c = 4000, .d = -200 };
  for (int k = 0; k < 5; k++) { bf.b += (uint32_t)k; bf.c ^= bf.a; bf.d -= (int32_t)bf.a; }
  emit("bits", ((uint64_t)bf.a << 40) | ((uint64_t)bf.b << 24) | ((uint64_t)bf.c << 9) | (uint64_t)(uint32_t)(bf.d & 0x1ff));
  struct big b = { .a = { 1, 2, 3, 4, 5, 6, 7, 8, x }, .tail = "twelve chars" };
  struct big c = twist(b);
  emit("struct", c.a[0] ^ c.a[8] ^ c.tail[12]);

  /* Control flow. */
  uint64_t sum = 0;
  for (int k = -2; k < 12; k++) sum = sum * 7 + (uint64_t)(int64_t)classify(k);
  emit("switch", sum);
  emit("vla", vla_sum(17));
  emit("fib", (uint64_t)fib(18));
  op_fn ops[] = { op_add, op_rot, op_mulhi };
  uint64_t acc = 1;
  for (int k = 0; k < 30; k++) acc = ops[k % 3](acc + (uint64_t)k, x ^ (uint64_t)k);
  emit("fnptr", acc);

  /* Atomics of every width. */
  static uint8_t a8 = 3;
  static uint16_t a16 = 300;
  static uint32_t a32 = 70000;
  static uint64_t a64 = 1;
  static unsigned __int128 a128 = 5;
  uint64_t at = __atomic_fetch_add(&a8, 7, __ATOMIC_SEQ_CST) + __atomic_fetch_xor(&a16, 0x55, __ATOMIC_SEQ_CST) +
                __atomic_fetch_sub(&a32, 9, __ATOMIC_SEQ_CST) + __atomic_exchange_n(&a64, x, __ATOMIC_SEQ_CST);
  uint64_t expect = x;
  at += __atomic_compare_exchange_n(&a64, &expect, 99, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  at += (uint64_t)__sync_val_compare_and_swap(&a128, (unsigned __int128)5, ((unsigned __int128)x << 64) | 7);
  at += __sync_bool_compare_and_swap(&a128, (unsigned __int128)5, (unsigned __int128)1);
  unsigned __int128 now = a128;
  at += 2u * __sync_bool_compare_and_swap(&a128, now, now * 3);
  emit("atomic", at ^ a8 ^ a16 ^ a32 ^ a64 ^ (uint64_t)(a128 >> 64));

  /* Builtins. */
  int64_t r;
  uint64_t flags = 0;
  flags |= (uint64_t)__builtin_add_overflow((int64_t)x, INT64_MAX, &r) << 0;
  flags |= (uint64_t)__builtin_mul_overflow((int64_t)x, 3, &r) << 1;
  flags |= (uint64_t)__builtin_sub_overflow(INT64_MIN, (int64_t)(x & 1), &r) << 2;
  emit("overflow", flags);
  emit("bitops", (uint64_t)__builtin_ctzll(x) | (uint64_t)__builtin_clzll(x >> 9) << 8 |
       (uint64_t)__builtin_popcountll(x) << 16 | (uint64_t)__builtin_parityll(x) << 24 | (uint64_t)__builtin_ffsll((int64_t)x << 5) << 32);
  emit("bswap", __builtin_bswap64(x) ^ __builtin_bswap32((uint32_t)x) ^ __builtin_bswap16((uint16_t)x));

  /* Loops over bytes: what -O2 turns into wide moves and the like. */
  uint8_t buf[64];
  for (int k = 0; k < 64; k++) buf[k] = (uint8_t)(x >> (k % 57));
  uint32_t h = 2166136261u;
  for (int k = 0; k < 64; k++) h = (h ^ buf[k]) * 16777619u;
  emit("fnv", h);
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  for (int k = 0; k < 64; k++) {
    int64_t v = (int64_t)(int8_t)buf[k] * (k - 30);
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  emit("minmax", (uint64_t)mn ^ ((uint64_t)mx << 20));
  return outlen;
}

#ifdef HOSTED
#include <stdio.h>
int main(void) {
  static char buffer[4096];
  size_t n = run(buffer);
  fwrite(buffer, 1, n, stdout);
  return 0;
}
#else
static char output[4096];
__attribute__((section(".text.start"), noreturn)) void _start(void) {
  size_t n = run(output);
  __asm__ volatile("hlt" : : "a"(output), "b"(n) : "memory");
  for (;;) __asm__ volatile("hlt");
}
#endif
