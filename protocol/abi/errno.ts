/**
 * Linux errno values, as KVM ioctls return them and as the protocol names them
 * (include/uapi/asm-generic/errno-base.h, errno.h).
 */

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EOPNOTSUPP: 95,
} as const;
export type ErrnoName = keyof typeof Errno;
