/**
 * The policy's CR-hardening sections after the schema: `crFilter` (docs/cr-filter.md) and
 * `registerIntercepts` (docs/register-intercepts.md), turned into what the KVM extensions take,
 * with the checks a schema cannot make.
 */
import { hvCrInterceptBit, type HvCrInterceptName } from '../../../protocol/abi.js';
import type { CrFilterMasks, RegisterIntercepts } from './compiled.js';
import { CR0_BIT_NAMES, CR4_BIT_NAMES, registerValue } from './control-register-names.js';
import type { CrFilterText, RegisterInterceptsText } from './document.js';
import type { IssueList } from './errors.js';
import { toBigInt } from './numbers.js';

const ALL = (1n << 64n) - 1n;

/** Intercepts the schema names (they are the TLFS's) but the modelled CPU cannot give. */
const NOT_MODELLED: ReadonlyMap<string, string> = new Map([
  ['XCr0Write', 'the modelled CPU has no XSETBV'],
  ['MsrSgxLaunchControlWrite', 'the modelled CPU has no SGX'],
]);

export function compileCrFilter(text: CrFilterText, path: string, issues: IssueList): CrFilterMasks {
  const cr0Mask = text.cr0 === undefined ? 0n : registerValue(text.cr0, CR0_BIT_NAMES);
  const cr4Mask = text.cr4 === undefined ? 0n : registerValue(text.cr4, CR4_BIT_NAMES);
  if (cr0Mask === 0n && cr4Mask === 0n) issues.add(path, 'filters nothing: name the CR0 or CR4 bits whose change must exit (cr0, cr4)');
  return { cr0Mask, cr4Mask };
}

export function compileRegisterIntercepts(text: RegisterInterceptsText, path: string, issues: IssueList): RegisterIntercepts {
  let control = 0n;
  text.intercept.forEach((name, i) => {
    const why = NOT_MODELLED.get(name);
    if (why !== undefined) issues.add(`${path}/intercept/${i}`, `${name} cannot be intercepted: ${why}`);
    else control |= hvCrInterceptBit(name as HvCrInterceptName);
  });
  return {
    control,
    // Unset masks are KVM's reset value, all ones: every write that changes the register.
    cr0Mask: text.cr0Mask === undefined ? ALL : registerValue(text.cr0Mask, CR0_BIT_NAMES),
    cr4Mask: text.cr4Mask === undefined ? ALL : registerValue(text.cr4Mask, CR4_BIT_NAMES),
    miscEnableMask: text.miscEnableMask === undefined ? ALL : toBigInt(text.miscEnableMask),
  };
}
