/**
 * Valid x86-64 encodings (per iced-x86) outside the core's supported set: they decode to #UD.
 * By iced `Code` name. The README section on the core lists the same families.
 */
const FAMILIES: [string, RegExp][] = [
  ['SIMD, x87, 3DNow!, VEX/EVEX/XOP/MVEX encodings', /^(VEX|EVEX|XOP|MVEX|D3NOW)_|^F[a-z0-9]*(_|$)|^(Emms|Femms|Wait|Fxsave|Fxrstor|Ldmxcsr|Stmxcsr|Xsave|Xrstor|Xgetbv|Xsetbv)/],
  ['segment-register pushes and pops, far pointers, far calls and jumps, LAR/LSL/VERR/VERW, SLDT/STR', /^(Push|Pop)[wdq]?_(FS|GS)|^L(ss|fs|gs)_|^(Call|Jmp)_m16|^Lar_|^Lsl_|^Sldt|^Str_|^Verr|^Verw/],
  ['string I/O', /^(Ins|Outs)[bwd]_/],
  ['UD0/UD1 (#UD either way)', /^Ud[01]_/],
  ['cache and TLB management beyond INVLPG', /^(Invd|Wbinvd|Wbnoinvd|Clflush|Clflushopt|Clwb|Invpcid|Invlpga|Invlpgb|Tlbsync|Cldemote|Prefetch)/],
  ['performance, random numbers, time', /^(Rdpmc|Rdtscp|Rdrand|Rdseed|Rdpid|Serialize|Hreset|Tpause|Umonitor|Umwait|Monitor|Mwait)/],
  ['SYSENTER/SYSEXIT, SMM, SMX', /^(Sysenter|Sysexit|Rsm|Getsec)/],
  ['control-flow enforcement (CET), MPX', /^(Rdssp|Rstorssp|Saveprevssp|Incssp|Setssbsy|Clrssbsy|Wrss|Wruss)|^Reservednop_rm\d+_r\d+_0F1[AB]|^Bnd/],
  ['non-temporal stores, MOVBE, CRC32', /^(Movnti|Movbe|Crc32)/],
  ['virtualization extensions (VMX/SVM) besides VMCALL/VMMCALL', /^(Vmread|Vmwrite|Vmlaunch|Vmresume|Vmxoff|Vmxon|Vmclear|Vmptrld|Vmptrst|Vmfunc|Invept|Invvpid|Vmrun|Vmload|Vmsave|Stgi|Clgi|Skinit|Encls|Enclu|Enclv|Pconfig|Seamcall|Seamops|Seamret|Tdcall|Rmpadjust|Rmpupdate|Psmash|Pvalidate|Rmpquery|Vmgexit)/],
  ['transactional memory', /^(Xabort|Xbegin|Xend|Xtest|Xsusldtrk|Xresldtrk)/],
  ['VIA PadLock', /^(Xsha|Xstore|Xcrypt|Montmul|Ccs_|Via_)/],
  ['other privileged and user-mode extensions', /^(Wrmsrns|Rdmsrlist|Wrmsrlist|Uiret|Testui|Clui|Stui|Senduipi|Lkgs|Eretu|Erets|Enqcmd|Movdir|Ptwrite|Rdfsbase|Rdgsbase|Wrfsbase|Wrgsbase|Encodekey|Loadiwkey|Aadd|Aand|Aor|Axor|Cmp[a-z]+xadd|Rdpru|Mcommit|Clzero|Mwaitx|Monitorx|Rdpkru|Wrpkru|Lwpins|Lwpval|Llwpcb|Slwpcb|Pbndkb)/],
  ['bit manipulation extensions beyond POPCNT/LZCNT/TZCNT', /^(Andn|Bextr|Blsi|Blsmsk|Blsr|Bzhi|Mulx|Pdep|Pext|Rorx|Sarx|Shlx|Shrx|Adcx|Adox|Blc|Bls|T1msk|Tzmsk)/],
];

/** Operand tokens of iced Code names that name SIMD or x87 registers or memory. */
const SIMD_TOKEN = /^(x|y|z)?mm|^sti?$|^st\d|^m\d+(fp|int|bcd|byte)$|^k\d?$|^tmm/;

/** The family a Code belongs to, or undefined when it should be supported. */
export function unsupportedFamily(code: string): string | undefined {
  if (code.split('_').slice(1).some((part) => SIMD_TOKEN.test(part))) return 'SIMD, x87, 3DNow!, VEX/EVEX/XOP/MVEX encodings';
  for (const [name, re] of FAMILIES) if (re.test(code)) return name;
  return undefined;
}
