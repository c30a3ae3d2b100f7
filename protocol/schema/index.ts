/** The protocol's validator (see base.ts for how schemas work in both directions). */
export * from './base.js';
export * from './integers.js';
export * from './scalars.js';
export * from './object-fields.js';
export * from './containers.js';
