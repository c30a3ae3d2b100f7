/**
 * Every size limit of the wire protocol, in one place (PROTOCOL.md §8, "Limits"). Per-message
 * limits (array lengths, string lengths) live next to the field they bound in messages/.
 */

/** Largest frame body an endpoint accepts unless configured otherwise: 1 MiB. */
export const DEFAULT_MAX_FRAME = 1 << 20;

/**
 * Smallest frame maximum an endpoint may be configured with: every error response (message up
 * to 4096 bytes, path up to 1024) fits, so a refusal can always be sent.
 */
export const MIN_MAX_FRAME = 8192;

/** Largest frame body any endpoint may be configured to accept (a u32 length field allows 4 GiB − 1). */
export const MAX_CONFIGURABLE_FRAME = 0x7fff_ffff;

/**
 * Deepest nesting of arrays and maps in one frame. The deepest valid message (a batch
 * response: response → result → results → item → result → exits → exit → msr) nests 8
 * levels; the headroom is for future messages. msgpackr has no depth limit of its own, so
 * the codec enforces this one before it unpacks.
 */
export const DEFAULT_MAX_DEPTH = 64;

/** Requests one server session runs at once; more are answered with `limit` and not run. */
export const DEFAULT_MAX_IN_FLIGHT = 1024;

/** Pushes a client keeps for a subscription it has no listener for yet (the rest are dropped). */
export const MAX_EARLY_PUSHES = 1024;

/**
 * Bytes of answers a server holds for a peer that does not read them: past this, the server
 * stops reading that connection until the peer has taken them (4 MiB, unless configured).
 */
export const DEFAULT_MAX_UNSENT = 4 << 20;

/** How long a peer past the unsent maximum has to read its answers before it is closed. */
export const DEFAULT_DRAIN_DEADLINE_MS = 10_000;

/** How long a server waits for a connection's successful hello before it closes it. */
export const DEFAULT_HELLO_DEADLINE_MS = 10_000;

/** How long a server waits for the rest of a frame once its first byte has come. */
export const DEFAULT_FRAME_DEADLINE_MS = 10_000;
