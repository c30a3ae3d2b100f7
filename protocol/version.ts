/**
 * The wire protocol version (PROTOCOL.md §3, "Handshake"). Both ends send it in `hello`; a
 * server answers any other number with `version_mismatch`. Bump it on any change that an
 * existing peer could misread.
 */
export const PROTOCOL_VERSION = 1;
