/**
 * Guest images for `pinbox run`: flat binaries and ELF64 executables.
 *
 *   const memory = new PhysicalMemory(policy.memorySize);
 *   const layout = buildBootImage(memory, { vcpus: policy.vcpus });
 *   const image = parseImage(bytes, { memorySize: memory.size, load, entry, source: file });  // ImageError
 *   loadImage(memory, image);
 *   bootVcpu(vcpu, layout, 0);  vcpu.setRegs({ ...vcpu.getRegs(), rip: image.entry });
 */
export { ImageError } from './errors.js';
export { isElf } from './elf.js';
export { loadImage, type LoadedImage } from './load.js';
export { DEFAULT_FLAT_LOAD_ADDRESS, parseImage, type ParseImageOptions } from './parse.js';
export { BOOT_REGIONS } from './placement.js';
export type { ImageSegment, ParsedImage } from './segment.js';
