#!/bin/sh
# Builds the guest image (program.bin) and the expected output (expected.txt) from program.c.
# Both are committed; rerun after changing program.c. Needs gcc and binutils for x86-64.
set -eu
cd "$(dirname "$0")"
FLAGS="-O2 -mgeneral-regs-only -mno-red-zone -ffreestanding -nostdlib -fno-pic -fno-pie -static \
  -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns"
gcc $FLAGS -Wl,-T,program.ld -Wl,--no-warn-rwx-segments -Wl,--build-id=none -o /tmp/pinbox-guest.elf program.c
objcopy -O binary /tmp/pinbox-guest.elf program.bin
gcc -O2 -DHOSTED -o /tmp/pinbox-guest-host program.c
/tmp/pinbox-guest-host > expected.txt
echo "program.bin: $(wc -c < program.bin) bytes; expected.txt: $(wc -c < expected.txt) bytes"
