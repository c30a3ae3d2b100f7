/*
 * The C side of kvm_real.bench.ts: the same guest loop on the same real KVM, driven from C,
 * so that the benchmark can show what Node.js and koffi add per exit. The guest state comes
 * from files the benchmark writes (guest memory, kvm_regs, kvm_sregs, kvm_cpuid2), so that both
 * sides run exactly the same boot state and code.
 *
 *   kvm-real-loop DIR inkernel|exit ITERATIONS
 *
 * inkernel: no filter; the guest's RDMSR loop runs in KVM until its HLT.
 * exit:     RDMSR of the loop's MSR is denied by the filter and exits to user space
 *           (KVM_MSR_EXIT_REASON_FILTER); each exit is answered with data 0, error 0.
 * Prints the nanoseconds per loop iteration (the loop count is in the guest code): wall-clock
 * time, then the CPU time (user + system) this process used, which other load on the machine
 * disturbs far less.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void *slurp(const char *dir, const char *name, size_t *size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc(*size);
  if (!p || fread(p, 1, *size, f) != *size) die(path);
  fclose(f);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s DIR inkernel|exit ITERATIONS\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  int exits = strcmp(argv[2], "exit") == 0;
  long iterations = atol(argv[3]);
  unsigned msr = (unsigned)strtoul(getenv("PINBOX_MSR") ? getenv("PINBOX_MSR") : "0x1fc", NULL, 0);

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");

  size_t mem_size, regs_size, sregs_size, cpuid_size;
  void *image = slurp(dir, "memory.bin", &mem_size);
  struct kvm_regs *regs = slurp(dir, "regs.bin", &regs_size);
  struct kvm_sregs *sregs = slurp(dir, "sregs.bin", &sregs_size);
  struct kvm_cpuid2 *cpuid = slurp(dir, "cpuid.bin", &cpuid_size);
  if (regs_size != sizeof *regs || sregs_size != sizeof *sregs) {
    fprintf(stderr, "regs.bin/sregs.bin have the wrong size\n");
    return 2;
  }
  void *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  memcpy(mem, image, mem_size);
  struct kvm_userspace_memory_region region = {
    .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (unsigned long)mem,
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  if (exits) {
    struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { KVM_MSR_EXIT_REASON_FILTER } };
    if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) die("KVM_ENABLE_CAP");
    static unsigned char deny[8];
    struct kvm_msr_filter filter = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
    filter.ranges[0] = (struct kvm_msr_filter_range){ .flags = KVM_MSR_FILTER_READ, .base = msr, .nmsrs = 1, .bitmap = deny };
    if (ioctl(vm, KVM_X86_SET_MSR_FILTER, &filter) < 0) die("KVM_X86_SET_MSR_FILTER");
  }

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  {
    /* The backend's signal set-up for its deadline (host/kvm/real/deadline.ts): SIGALRM blocked
     * in the thread, unblocked only inside KVM_RUN. Done here too, so that the figures differ by
     * what Node.js and koffi add, not by this. (No timer is armed: the loop never needs it.) */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old);
    struct { struct kvm_signal_mask hdr; unsigned char set[8]; } mask = { .hdr = { .len = 8 } };
    sigdelset(&old, SIGALRM);
    memcpy(mask.set, &old, 8);
    if (ioctl(vcpu, KVM_SET_SIGNAL_MASK, &mask) < 0) die("KVM_SET_SIGNAL_MASK");
  }
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  if (ioctl(vcpu, KVM_SET_SREGS, sregs) < 0) die("KVM_SET_SREGS");
  if (ioctl(vcpu, KVM_SET_REGS, regs) < 0) die("KVM_SET_REGS");

  struct timespec t0, t1;
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      die("KVM_RUN");
    }
    if (run->exit_reason == KVM_EXIT_X86_RDMSR) {
      run->msr.data = 0;
      run->msr.error = 0;
      continue;
    }
    if (run->exit_reason == KVM_EXIT_HLT) break;
    fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  getrusage(RUSAGE_SELF, &r1);
  double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
  double cpu = ((double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec)) * 1e9 +
               ((double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) + (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) * 1e3;
  printf("%.1f %.1f\n", ns / (double)iterations, cpu / (double)iterations);
  return 0;
}
