/** pinbox/protocol: the wire contract and ABI constants shared by the host and the guest SDK. */
export * from './abi.js';
