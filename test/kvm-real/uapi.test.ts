/**
 * Every ABI number the real backend ships — ioctl requests, structure sizes and offsets, exit
 * reasons and capabilities it decodes, the libc constants it passes — held two ways:
 *   1. against literals derived by hand from the headers (_IOC arithmetic done on paper:
 *      dir << 30 | size << 16 | 0xAE << 8 | nr), which needs nothing on the machine;
 *   2. against the machine's own <linux/kvm.h> and libc headers, by compiling a C program with
 *      gcc that prints each one (where gcc and the headers are present; "not run" otherwise).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '../../protocol/abi.js';
import * as libc from '../../host/kvm/real/libc.js';
import * as U from '../../host/kvm/real/uapi.js';
import { KVM_REGS_FIELDS } from '../../host/kvm/api/regs.js';

/** [name, the value shipped, the literal, the C expression that gives it]. */
type Row = readonly [string, number, number, string];

const run = (f: string): string => `offsetof(struct kvm_run, ${f})`;
const ROWS: readonly Row[] = [
  // ioctl requests
  ['KVM_GET_API_VERSION', U.KVM_GET_API_VERSION, 0xae00, 'KVM_GET_API_VERSION'],
  ['KVM_CREATE_VM', U.KVM_CREATE_VM, 0xae01, 'KVM_CREATE_VM'],
  ['KVM_GET_MSR_INDEX_LIST', U.KVM_GET_MSR_INDEX_LIST, 0xc004ae02, 'KVM_GET_MSR_INDEX_LIST'],
  ['KVM_CHECK_EXTENSION', U.KVM_CHECK_EXTENSION, 0xae03, 'KVM_CHECK_EXTENSION'],
  ['KVM_GET_VCPU_MMAP_SIZE', U.KVM_GET_VCPU_MMAP_SIZE, 0xae04, 'KVM_GET_VCPU_MMAP_SIZE'],
  ['KVM_GET_SUPPORTED_CPUID', U.KVM_GET_SUPPORTED_CPUID, 0xc008ae05, 'KVM_GET_SUPPORTED_CPUID'],
  ['KVM_CREATE_VCPU', U.KVM_CREATE_VCPU, 0xae41, 'KVM_CREATE_VCPU'],
  ['KVM_SET_USER_MEMORY_REGION', U.KVM_SET_USER_MEMORY_REGION, 0x4020ae46, 'KVM_SET_USER_MEMORY_REGION'],
  ['KVM_RUN', U.KVM_RUN, 0xae80, 'KVM_RUN'],
  ['KVM_GET_REGS', U.KVM_GET_REGS, 0x8090ae81, 'KVM_GET_REGS'],
  ['KVM_SET_REGS', U.KVM_SET_REGS, 0x4090ae82, 'KVM_SET_REGS'],
  ['KVM_GET_SREGS', U.KVM_GET_SREGS, 0x8138ae83, 'KVM_GET_SREGS'],
  ['KVM_SET_SREGS', U.KVM_SET_SREGS, 0x4138ae84, 'KVM_SET_SREGS'],
  ['KVM_GET_MSRS', U.KVM_GET_MSRS, 0xc008ae88, 'KVM_GET_MSRS'],
  ['KVM_SET_MSRS', U.KVM_SET_MSRS, 0x4008ae89, 'KVM_SET_MSRS'],
  ['KVM_SET_SIGNAL_MASK', U.KVM_SET_SIGNAL_MASK, 0x4004ae8b, 'KVM_SET_SIGNAL_MASK'],
  ['KVM_SET_CPUID2', U.KVM_SET_CPUID2, 0x4008ae90, 'KVM_SET_CPUID2'],
  ['KVM_GET_CPUID2', U.KVM_GET_CPUID2, 0xc008ae91, 'KVM_GET_CPUID2'],
  ['KVM_ENABLE_CAP', U.KVM_ENABLE_CAP, 0x4068aea3, 'KVM_ENABLE_CAP'],
  ['KVM_X86_SET_MSR_FILTER', U.KVM_X86_SET_MSR_FILTER, 0x4188aec6, 'KVM_X86_SET_MSR_FILTER'],
  ['KVM_API_VERSION', U.KVM_API_VERSION, 12, 'KVM_API_VERSION'],
  // structure sizes
  ['sizeof kvm_userspace_memory_region', U.SIZEOF_USERSPACE_MEMORY_REGION, 32, 'sizeof(struct kvm_userspace_memory_region)'],
  ['sizeof kvm_regs', U.SIZEOF_REGS, 144, 'sizeof(struct kvm_regs)'],
  ['sizeof kvm_sregs', U.SIZEOF_SREGS, 312, 'sizeof(struct kvm_sregs)'],
  ['sizeof kvm_segment', U.SIZEOF_SEGMENT, 24, 'sizeof(struct kvm_segment)'],
  ['sizeof kvm_msr_list', U.SIZEOF_MSR_LIST_HEADER, 4, 'sizeof(struct kvm_msr_list)'],
  ['sizeof kvm_msrs', U.SIZEOF_MSRS_HEADER, 8, 'sizeof(struct kvm_msrs)'],
  ['sizeof kvm_msr_entry', U.SIZEOF_MSR_ENTRY, 16, 'sizeof(struct kvm_msr_entry)'],
  ['sizeof kvm_cpuid2', U.SIZEOF_CPUID2_HEADER, 8, 'sizeof(struct kvm_cpuid2)'],
  ['sizeof kvm_cpuid_entry2', U.SIZEOF_CPUID_ENTRY2, 40, 'sizeof(struct kvm_cpuid_entry2)'],
  ['sizeof kvm_enable_cap', U.SIZEOF_ENABLE_CAP, 104, 'sizeof(struct kvm_enable_cap)'],
  ['sizeof kvm_msr_filter', U.SIZEOF_MSR_FILTER, 392, 'sizeof(struct kvm_msr_filter)'],
  ['sizeof kvm_msr_filter_range', U.SIZEOF_MSR_FILTER_RANGE, 24, 'sizeof(struct kvm_msr_filter_range)'],
  ['sizeof kvm_signal_mask', U.SIZEOF_SIGNAL_MASK, 4, 'sizeof(struct kvm_signal_mask)'],
  // struct kvm_run
  ['kvm_run.immediate_exit', U.RUN.immediate_exit, 1, run('immediate_exit')],
  ['kvm_run.exit_reason', U.RUN.exit_reason, 8, run('exit_reason')],
  ['kvm_run.flags', U.RUN.flags, 14, run('flags')],
  ['kvm_run.cr8', U.RUN.cr8, 16, run('cr8')],
  ['kvm_run.apic_base', U.RUN.apic_base, 24, run('apic_base')],
  ['kvm_run.io.direction', U.RUN.io_direction, 32, run('io.direction')],
  ['kvm_run.io.size', U.RUN.io_size, 33, run('io.size')],
  ['kvm_run.io.port', U.RUN.io_port, 34, run('io.port')],
  ['kvm_run.io.count', U.RUN.io_count, 36, run('io.count')],
  ['kvm_run.io.data_offset', U.RUN.io_data_offset, 40, run('io.data_offset')],
  ['kvm_run.mmio.phys_addr', U.RUN.mmio_phys_addr, 32, run('mmio.phys_addr')],
  ['kvm_run.mmio.data', U.RUN.mmio_data, 40, run('mmio.data')],
  ['kvm_run.mmio.len', U.RUN.mmio_len, 48, run('mmio.len')],
  ['kvm_run.mmio.is_write', U.RUN.mmio_is_write, 52, run('mmio.is_write')],
  ['kvm_run.fail_entry.hardware_entry_failure_reason', U.RUN.fail_entry_reason, 32, run('fail_entry.hardware_entry_failure_reason')],
  ['kvm_run.fail_entry.cpu', U.RUN.fail_entry_cpu, 40, run('fail_entry.cpu')],
  ['kvm_run.internal.suberror', U.RUN.internal_suberror, 32, run('internal.suberror')],
  ['kvm_run.internal.ndata', U.RUN.internal_ndata, 36, run('internal.ndata')],
  ['kvm_run.internal.data', U.RUN.internal_data, 40, run('internal.data')],
  ['kvm_run.system_event.type', U.RUN.system_event_type, 32, run('system_event.type')],
  ['kvm_run.system_event.ndata', U.RUN.system_event_ndata, 36, run('system_event.ndata')],
  ['kvm_run.system_event.data', U.RUN.system_event_data, 40, run('system_event.data')],
  ['kvm_run.msr.error', U.RUN.msr_error, 32, run('msr.error')],
  ['kvm_run.msr.reason', U.RUN.msr_reason, 40, run('msr.reason')],
  ['kvm_run.msr.index', U.RUN.msr_index, 44, run('msr.index')],
  ['kvm_run.msr.data', U.RUN.msr_data, 48, run('msr.data')],
  ['kvm_run.kvm_valid_regs', U.RUN.kvm_valid_regs, 288, run('kvm_valid_regs')],
  ['kvm_run.kvm_dirty_regs', U.RUN.kvm_dirty_regs, 296, run('kvm_dirty_regs')],
  ['kvm_run.s.regs.regs', U.RUN.s_regs, 304, run('s.regs.regs')],
  ['kvm_run.s.regs.sregs', U.RUN.s_sregs, 448, run('s.regs.sregs')],
  // kvm_regs, kvm_segment, kvm_sregs
  ...KVM_REGS_FIELDS.map((f, i): Row => [`kvm_regs.${f}`, 8 * i, [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136][i]!, `offsetof(struct kvm_regs, ${f})`]),
  ...(Object.entries(U.SEGMENT) as [string, number][]).map(([f, v]): Row => [
    `kvm_segment.${f}`, v, { base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22 }[f]!, `offsetof(struct kvm_segment, ${f})`,
  ]),
  ...U.SREGS_SEGMENTS.map((f, i): Row => [`kvm_sregs.${f}`, i * U.SIZEOF_SEGMENT, [0, 24, 48, 72, 96, 120, 144, 168][i]!, `offsetof(struct kvm_sregs, ${f})`]),
  ...(Object.entries(U.SREGS) as [string, number][]).map(([f, v]): Row => [
    `kvm_sregs.${f}`, v, { gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apic_base: 272, interrupt_bitmap: 280 }[f]!, `offsetof(struct kvm_sregs, ${f})`,
  ]),
  ['kvm_dtable.base', U.DTABLE.base, 0, 'offsetof(struct kvm_dtable, base)'],
  ['kvm_dtable.limit', U.DTABLE.limit, 8, 'offsetof(struct kvm_dtable, limit)'],
  // the other structures
  ...(Object.entries(U.MEMORY_REGION) as [string, number][]).map(([f, v]): Row => [
    `kvm_userspace_memory_region.${f}`, v, { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24 }[f]!, `offsetof(struct kvm_userspace_memory_region, ${f})`,
  ]),
  ['kvm_msr_entry.index', U.MSR_ENTRY.index, 0, 'offsetof(struct kvm_msr_entry, index)'],
  ['kvm_msr_entry.data', U.MSR_ENTRY.data, 8, 'offsetof(struct kvm_msr_entry, data)'],
  ...(Object.entries(U.CPUID_ENTRY2) as [string, number][]).map(([f, v]): Row => [
    `kvm_cpuid_entry2.${f}`, v, { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 }[f]!, `offsetof(struct kvm_cpuid_entry2, ${f})`,
  ]),
  ['kvm_enable_cap.cap', U.ENABLE_CAP.cap, 0, 'offsetof(struct kvm_enable_cap, cap)'],
  ['kvm_enable_cap.flags', U.ENABLE_CAP.flags, 4, 'offsetof(struct kvm_enable_cap, flags)'],
  ['kvm_enable_cap.args', U.ENABLE_CAP.args, 8, 'offsetof(struct kvm_enable_cap, args)'],
  ['kvm_msr_filter.flags', U.MSR_FILTER.flags, 0, 'offsetof(struct kvm_msr_filter, flags)'],
  ['kvm_msr_filter.ranges', U.MSR_FILTER.ranges, 8, 'offsetof(struct kvm_msr_filter, ranges)'],
  ...(Object.entries(U.MSR_FILTER_RANGE) as [string, number][]).map(([f, v]): Row => [
    `kvm_msr_filter_range.${f}`, v, { flags: 0, nmsrs: 4, base: 8, bitmap: 16 }[f]!, `offsetof(struct kvm_msr_filter_range, ${f})`,
  ]),
  ['KVM_CPUID_FLAG_SIGNIFCANT_INDEX', U.KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1, 'KVM_CPUID_FLAG_SIGNIFCANT_INDEX'],
  // exit reasons and capabilities the backend decodes or asks for (protocol/abi.ts)
  ['KVM_EXIT_IO', abi.KVM_EXIT_IO, 2, 'KVM_EXIT_IO'],
  ['KVM_EXIT_HLT', abi.KVM_EXIT_HLT, 5, 'KVM_EXIT_HLT'],
  ['KVM_EXIT_MMIO', abi.KVM_EXIT_MMIO, 6, 'KVM_EXIT_MMIO'],
  ['KVM_EXIT_SHUTDOWN', abi.KVM_EXIT_SHUTDOWN, 8, 'KVM_EXIT_SHUTDOWN'],
  ['KVM_EXIT_FAIL_ENTRY', abi.KVM_EXIT_FAIL_ENTRY, 9, 'KVM_EXIT_FAIL_ENTRY'],
  ['KVM_EXIT_INTR', abi.KVM_EXIT_INTR, 10, 'KVM_EXIT_INTR'],
  ['KVM_EXIT_INTERNAL_ERROR', abi.KVM_EXIT_INTERNAL_ERROR, 17, 'KVM_EXIT_INTERNAL_ERROR'],
  ['KVM_INTERNAL_ERROR_EMULATION', abi.KVM_INTERNAL_ERROR_EMULATION, 1, 'KVM_INTERNAL_ERROR_EMULATION'],
  ['KVM_EXIT_SYSTEM_EVENT', abi.KVM_EXIT_SYSTEM_EVENT, 24, 'KVM_EXIT_SYSTEM_EVENT'],
  ['KVM_EXIT_X86_RDMSR', abi.KVM_EXIT_X86_RDMSR, 29, 'KVM_EXIT_X86_RDMSR'],
  ['KVM_EXIT_X86_WRMSR', abi.KVM_EXIT_X86_WRMSR, 30, 'KVM_EXIT_X86_WRMSR'],
  ['KVM_EXIT_IO_OUT', abi.KVM_EXIT_IO_OUT, 1, 'KVM_EXIT_IO_OUT'],
  ['KVM_EXIT_UNKNOWN', abi.KVM_EXIT_UNKNOWN, 0, 'KVM_EXIT_UNKNOWN'],
  ['KVM_EXIT_EXCEPTION', abi.KVM_EXIT_EXCEPTION, 1, 'KVM_EXIT_EXCEPTION'],
  ['KVM_EXIT_HYPERCALL', abi.KVM_EXIT_HYPERCALL, 3, 'KVM_EXIT_HYPERCALL'],
  ['KVM_EXIT_DEBUG', abi.KVM_EXIT_DEBUG, 4, 'KVM_EXIT_DEBUG'],
  ['KVM_EXIT_IRQ_WINDOW_OPEN', abi.KVM_EXIT_IRQ_WINDOW_OPEN, 7, 'KVM_EXIT_IRQ_WINDOW_OPEN'],
  ['KVM_EXIT_SET_TPR', abi.KVM_EXIT_SET_TPR, 11, 'KVM_EXIT_SET_TPR'],
  ['KVM_EXIT_TPR_ACCESS', abi.KVM_EXIT_TPR_ACCESS, 12, 'KVM_EXIT_TPR_ACCESS'],
  ['KVM_EXIT_NMI', abi.KVM_EXIT_NMI, 16, 'KVM_EXIT_NMI'],
  ['KVM_EXIT_IOAPIC_EOI', abi.KVM_EXIT_IOAPIC_EOI, 26, 'KVM_EXIT_IOAPIC_EOI'],
  ['KVM_EXIT_HYPERV', abi.KVM_EXIT_HYPERV, 27, 'KVM_EXIT_HYPERV'],
  ['KVM_EXIT_DIRTY_RING_FULL', abi.KVM_EXIT_DIRTY_RING_FULL, 31, 'KVM_EXIT_DIRTY_RING_FULL'],
  ['KVM_EXIT_AP_RESET_HOLD', abi.KVM_EXIT_AP_RESET_HOLD, 32, 'KVM_EXIT_AP_RESET_HOLD'],
  ['KVM_EXIT_X86_BUS_LOCK', abi.KVM_EXIT_X86_BUS_LOCK, 33, 'KVM_EXIT_X86_BUS_LOCK'],
  ['KVM_EXIT_XEN', abi.KVM_EXIT_XEN, 34, 'KVM_EXIT_XEN'],
  ['KVM_EXIT_NOTIFY', abi.KVM_EXIT_NOTIFY, 37, 'KVM_EXIT_NOTIFY'],
  // memory attributes (Linux 6.8; an older header skips them): _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
  ['KVM_SET_MEMORY_ATTRIBUTES', abi.KVM_SET_MEMORY_ATTRIBUTES, 0x4020aed2, 'KVM_SET_MEMORY_ATTRIBUTES'],
  ['KVM_EXIT_MEMORY_FAULT', abi.KVM_EXIT_MEMORY_FAULT, 39, 'KVM_EXIT_MEMORY_FAULT'],
  ['KVM_CAP_MEMORY_FAULT_INFO', abi.KVM_CAP_MEMORY_FAULT_INFO, 232, 'KVM_CAP_MEMORY_FAULT_INFO'],
  ['KVM_CAP_MEMORY_ATTRIBUTES', abi.KVM_CAP_MEMORY_ATTRIBUTES, 233, 'KVM_CAP_MEMORY_ATTRIBUTES'],
  ['KVM_MEMORY_ATTRIBUTE_PRIVATE', Number(abi.KVM_MEMORY_ATTRIBUTE_PRIVATE), 8, 'KVM_MEMORY_ATTRIBUTE_PRIVATE'],
  ['KVM_MEMORY_EXIT_FLAG_PRIVATE', Number(abi.KVM_MEMORY_EXIT_FLAG_PRIVATE), 8, 'KVM_MEMORY_EXIT_FLAG_PRIVATE'],
  ['KVM_CAP_NR_VCPUS', abi.KVM_CAP_NR_VCPUS, 9, 'KVM_CAP_NR_VCPUS'],
  ['KVM_CAP_MAX_VCPUS', abi.KVM_CAP_MAX_VCPUS, 66, 'KVM_CAP_MAX_VCPUS'],
  ['KVM_CAP_SYNC_REGS', abi.KVM_CAP_SYNC_REGS, 74, 'KVM_CAP_SYNC_REGS'],
  ['KVM_CAP_IMMEDIATE_EXIT', abi.KVM_CAP_IMMEDIATE_EXIT, 136, 'KVM_CAP_IMMEDIATE_EXIT'],
  ['KVM_CAP_X86_USER_SPACE_MSR', abi.KVM_CAP_X86_USER_SPACE_MSR, 188, 'KVM_CAP_X86_USER_SPACE_MSR'],
  ['KVM_CAP_X86_MSR_FILTER', abi.KVM_CAP_X86_MSR_FILTER, 189, 'KVM_CAP_X86_MSR_FILTER'],
  ['KVM_CAP_ENFORCE_PV_FEATURE_CPUID', abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 190, 'KVM_CAP_ENFORCE_PV_FEATURE_CPUID'],
  ['KVM_CAP_X86_TRIPLE_FAULT_EVENT', abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT, 218, 'KVM_CAP_X86_TRIPLE_FAULT_EVENT'],
  ['KVM_MSR_EXIT_REASON_FILTER', abi.KVM_MSR_EXIT_REASON_FILTER, 4, 'KVM_MSR_EXIT_REASON_FILTER'],
  ['KVM_MSR_FILTER_DEFAULT_DENY', abi.KVM_MSR_FILTER_DEFAULT_DENY, 1, 'KVM_MSR_FILTER_DEFAULT_DENY'],
  ['KVM_MSR_FILTER_MAX_RANGES', abi.KVM_MSR_FILTER_MAX_RANGES, 16, 'KVM_MSR_FILTER_MAX_RANGES'],
  ['KVM_MSR_FILTER_MAX_BITMAP_SIZE', abi.KVM_MSR_FILTER_MAX_BITMAP_SIZE, 0x600, 'KVM_MSR_FILTER_MAX_BITMAP_SIZE'],
  // libc (x86-64 Linux)
  ['O_RDWR', libc.O_RDWR, 2, 'O_RDWR'],
  ['O_CLOEXEC', libc.O_CLOEXEC, 0x80000, 'O_CLOEXEC'],
  ['PROT_READ', libc.PROT_READ, 1, 'PROT_READ'],
  ['PROT_WRITE', libc.PROT_WRITE, 2, 'PROT_WRITE'],
  ['MAP_SHARED', libc.MAP_SHARED, 1, 'MAP_SHARED'],
  ['MAP_PRIVATE', libc.MAP_PRIVATE, 2, 'MAP_PRIVATE'],
  ['MAP_FIXED', libc.MAP_FIXED, 0x10, 'MAP_FIXED'],
  ['MAP_ANONYMOUS', libc.MAP_ANONYMOUS, 0x20, 'MAP_ANONYMOUS'],
  ['MAP_NORESERVE', libc.MAP_NORESERVE, 0x4000, 'MAP_NORESERVE'],
  ['SIG_BLOCK', libc.SIG_BLOCK, 0, 'SIG_BLOCK'],
  ['SIGALRM', libc.SIGALRM, 14, 'SIGALRM'],
  ['CLOCK_MONOTONIC', libc.CLOCK_MONOTONIC, 1, 'CLOCK_MONOTONIC'],
  ['TIMER_ABSTIME', libc.TIMER_ABSTIME, 1, 'TIMER_ABSTIME'],
  ['SIGEV_THREAD_ID', libc.SIGEV_THREAD_ID, 4, 'SIGEV_THREAD_ID'],
  ['sizeof sigset_t', libc.SIZEOF_LIBC_SIGSET, 128, 'sizeof(sigset_t)'],
  ['sizeof struct sigevent', libc.SIZEOF_SIGEVENT, 64, 'sizeof(struct sigevent)'],
  ['sigevent.sigev_signo', libc.SIGEVENT.signo, 8, 'offsetof(struct sigevent, sigev_signo)'],
  ['sigevent.sigev_notify', libc.SIGEVENT.notify, 12, 'offsetof(struct sigevent, sigev_notify)'],
  ['sigevent._sigev_un._tid', libc.SIGEVENT.tid, 16, 'offsetof(struct sigevent, _sigev_un._tid)'],
  ['sizeof struct itimerspec', libc.SIZEOF_ITIMERSPEC, 32, 'sizeof(struct itimerspec)'],
];

test('every ABI number the real backend ships equals its hand-derived literal', (t) => {
  for (const [name, shipped, literal] of ROWS) t.is(shipped, literal, name);
  t.true(ROWS.length > 100);
});

const KVM_H = '/usr/include/linux/kvm.h';
const gcc = spawnSync('gcc', ['--version']);
const whyNot = gcc.error !== undefined || gcc.status !== 0 ? 'gcc is not on PATH' : !existsSync(KVM_H) ? `${KVM_H} is missing` : undefined;

/** Names Linux 6.8 brought (guest_memfd's memory attributes), which an older header lacks. */
const SINCE_6_8 = new Set([
  'KVM_SET_MEMORY_ATTRIBUTES', 'KVM_CAP_MEMORY_FAULT_INFO', 'KVM_CAP_MEMORY_ATTRIBUTES', 'KVM_MEMORY_ATTRIBUTE_PRIVATE',
  'KVM_MEMORY_EXIT_FLAG_PRIVATE',
]);

/** The C program: prints "name value" for each row whose expression the headers define. */
function program(rows: readonly Row[]): string {
  const lines = rows.map(([, , , expr], i) => {
    // An exit reason newer than the installed header is skipped, not failed.
    const guard = /^[A-Z_0-9]+$/.test(expr) ? `#ifdef ${expr}\n` : '';
    return `${guard}  printf("%d %llu\\n", ${i}, (unsigned long long)(${expr}));\n${guard ? '#endif\n' : ''}`;
  });
  return [
    '#define _GNU_SOURCE',
    '#include <stddef.h>', '#include <stdio.h>', '#include <fcntl.h>', '#include <signal.h>', '#include <time.h>',
    '#include <sys/mman.h>', '#include <linux/kvm.h>',
    // KVM_API_VERSION and KVM_MSR_FILTER_* are in <linux/kvm.h>; KVM_CPUID_FLAG_* in <asm/kvm.h>.
    'int main(void) {',
    ...lines,
    '  return 0;',
    '}',
  ].join('\n');
}

if (whyNot !== undefined) {
  test.todo(`the ABI numbers against <linux/kvm.h> compiled by gcc — not run: ${whyNot}`);
} else {
  test('every ABI number the real backend ships equals what <linux/kvm.h> and libc give, compiled by gcc', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pinbox-uapi-'));
    try {
      writeFileSync(join(dir, 'uapi.c'), program(ROWS));
      execFileSync('gcc', ['-o', join(dir, 'uapi'), join(dir, 'uapi.c')], { stdio: 'pipe' });
      const out = execFileSync(join(dir, 'uapi'), { encoding: 'utf8' });
      const seen = new Set<number>();
      for (const line of out.trim().split('\n')) {
        const [i, value] = line.split(' ').map(Number) as [number, number];
        seen.add(i);
        t.is(ROWS[i]![1], value, ROWS[i]![0]);
      }
      // Only exit-reason names and the memory-attribute ABI (Linux 6.8) may be newer than the installed header.
      const missing = ROWS.filter((_, i) => !seen.has(i)).map((r) => r[0]);
      t.log(`checked ${seen.size} numbers against ${KVM_H}${missing.length > 0 ? `; not in this header: ${missing.join(', ')}` : ''}`);
      t.true(missing.every((name) => name.startsWith('KVM_EXIT_') || SINCE_6_8.has(name)), missing.join(', '));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
