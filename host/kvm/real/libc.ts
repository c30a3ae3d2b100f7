/**
 * The C library calls the real backend makes, through koffi (an optional dependency, pinned
 * exactly). This is the only place koffi is named, and it is loaded by a dynamic import the
 * first time a real backend is asked for: a user without koffi, or on another platform, never
 * loads it and loses nothing else. Every call is synchronous: KVM_RUN through koffi's async
 * workers would hop threads, hide errno and cost 3–6× more (docs/real-kvm.md §3).
 */
import { RealKvmUnavailable } from './unavailable.js';

/** An opaque C pointer as koffi hands it out. */
export type Pointer = object;

/** The part of koffi's API the backend uses (declared here so that koffi's types are not needed to build). */
interface KoffiModule {
  load(path: string): { func(declaration: string): (...args: unknown[]) => unknown };
  view(pointer: Pointer, length: number): ArrayBuffer;
  address(pointer: Pointer): bigint;
  errno(): number;
}

export interface Libc {
  /** open(2); -1 on failure (errno()). */
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** ioctl(2) whose third argument is an integer (KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_RUN …). */
  ioctlValue(fd: number, request: number, arg: number | bigint): number;
  /** ioctl(2) whose third argument points to a structure: a buffer or a mapped pointer. */
  ioctlPointer(fd: number, request: number, arg: Uint8Array | Pointer): number;
  /** mmap(2); MAP_FAILED is returned as null. */
  mmap(addr: bigint, length: number, prot: number, flags: number, fd: number, offset: number): Pointer | null;
  munmap(pointer: Pointer, length: number): number;
  gettid(): number;
  /** timer_create(3): `timerOut` receives the 8-byte timer_t. */
  timerCreate(clock: number, sigevent: Uint8Array, timerOut: Uint8Array): number;
  timerSettime(timer: bigint, flags: number, value: Uint8Array): number;
  timerDelete(timer: bigint): number;
  /** pthread_sigmask(3): returns the error number (0 on success), not -1. */
  pthreadSigmask(how: number, set: Uint8Array | null, old: Uint8Array | null): number;
  /** sigtimedwait(2): the signal number taken, or -1 (EAGAIN when none is pending). */
  sigtimedwait(set: Uint8Array, timeout: Uint8Array): number;
  /** errno as the last call left it (koffi saves it right after each call). */
  errno(): number;
  /** An ArrayBuffer over `length` bytes at `pointer`, without copying. */
  view(pointer: Pointer, length: number): ArrayBuffer;
  address(pointer: Pointer): bigint;
}

/** The koffi version this backend was built and measured with (package.json pins it exactly). */
export const KOFFI_VERSION = '3.3.4';

// <fcntl.h>, <sys/mman.h>, <signal.h>, <time.h> on x86-64 Linux (glibc and musl agree).
export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIGALRM = 14;
export const CLOCK_MONOTONIC = 1;
export const TIMER_ABSTIME = 1;
export const SIGEV_THREAD_ID = 4;
/** glibc's sigset_t is 1024 bits; the kernel's (and KVM_SET_SIGNAL_MASK's) is 64. */
export const SIZEOF_LIBC_SIGSET = 128;
export const SIZEOF_KERNEL_SIGSET = 8;
/** struct sigevent: sigev_value (8), sigev_signo (4), sigev_notify (4), then _sigev_un._tid. */
export const SIZEOF_SIGEVENT = 64;
export const SIGEVENT = { signo: 8, notify: 12, tid: 16 } as const;
/** struct itimerspec: it_interval {tv_sec, tv_nsec}, it_value {tv_sec, tv_nsec}. */
export const SIZEOF_ITIMERSPEC = 32;

const MAP_FAILED = (1n << 64n) - 1n;
const KOFFI_SPECIFIER = 'koffi';

let loaded: Promise<Libc> | undefined;

/**
 * Loads koffi and binds the C library, once per thread. Rejects with RealKvmUnavailable on a
 * host that is not x86-64 Linux, or when koffi is not installed or does not load.
 */
export function loadLibc(): Promise<Libc> {
  loaded ??= bind();
  return loaded;
}

async function bind(): Promise<Libc> {
  if (process.platform !== 'linux') {
    throw new RealKvmUnavailable('not-linux', `the real KVM backend needs Linux; this is ${process.platform}`);
  }
  if (process.arch !== 'x64') {
    throw new RealKvmUnavailable('not-x86-64', `the real KVM backend needs an x86-64 host (KVM runs only guests of its own architecture); this is ${process.arch}`);
  }
  let koffi: KoffiModule;
  try {
    // A variable specifier: bundlers leave it alone and type checking does not need koffi.
    const mod = (await import(KOFFI_SPECIFIER)) as { default?: KoffiModule } & KoffiModule;
    koffi = mod.default ?? mod;
  } catch (e) {
    throw new RealKvmUnavailable(
      'no-ffi',
      `the real KVM backend needs the optional package koffi@${KOFFI_VERSION}, which is not installed or does not load (${(e as Error).message.split('\n')[0]}); install it with npm install koffi@${KOFFI_VERSION}`,
    );
  }
  const c = koffi.load('libc.so.6');
  const open = c.func('int open(const char *path, int flags)');
  const close = c.func('int close(int fd)');
  // ioctl is variadic; on x86-64 SysV a fixed 64-bit third argument is passed the same way.
  const ioctlValue = c.func('int ioctl(int fd, unsigned long request, uint64_t arg)');
  const ioctlPointer = c.func('int ioctl(int fd, unsigned long request, void *arg)');
  const mmap = c.func('void *mmap(uint64_t addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = c.func('int munmap(void *addr, size_t length)');
  const gettid = c.func('int gettid()');
  const timerCreate = c.func('int timer_create(int clock, void *sevp, void *timerid)');
  const timerSettime = c.func('int timer_settime(uint64_t timerid, int flags, void *value, void *old)');
  const timerDelete = c.func('int timer_delete(uint64_t timerid)');
  const pthreadSigmask = c.func('int pthread_sigmask(int how, void *set, void *old)');
  const sigtimedwait = c.func('int sigtimedwait(void *set, void *info, void *timeout)');
  return {
    open: (path, flags) => open(path, flags) as number,
    close: (fd) => close(fd) as number,
    ioctlValue: (fd, request, arg) => ioctlValue(fd, request, arg) as number,
    ioctlPointer: (fd, request, arg) => ioctlPointer(fd, request, arg) as number,
    mmap: (addr, length, prot, flags, fd, offset) => {
      const p = mmap(addr, length, prot, flags, fd, offset) as Pointer | null;
      return p === null || koffi.address(p) === MAP_FAILED ? null : p;
    },
    munmap: (pointer, length) => munmap(pointer, length) as number,
    gettid: () => gettid() as number,
    timerCreate: (clock, sigevent, timerOut) => timerCreate(clock, sigevent, timerOut) as number,
    timerSettime: (timer, flags, value) => timerSettime(timer, flags, value, null) as number,
    timerDelete: (timer) => timerDelete(timer) as number,
    pthreadSigmask: (how, set, old) => pthreadSigmask(how, set, old) as number,
    sigtimedwait: (set, timeout) => sigtimedwait(set, null, timeout) as number,
    errno: () => koffi.errno(),
    view: (pointer, length) => koffi.view(pointer, length),
    address: (pointer) => koffi.address(pointer),
  };
}
