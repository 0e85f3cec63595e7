/**
 * How long a scenario may take before it counts as a hang; pgtwin's own wait timeout is shorter. Generous
 * for a loaded machine (five queued statements once outlasted 800 ms): a hang never ends, so it still fails.
 */
export const HANG_DEADLINE_MS = 15_000;
export const PGTWIN_WAIT_TIMEOUT_MS = 5_000;
/** A scenario's own limit, above the deadline so that a hang fails with the deadline's message. */
export const SCENARIO_TIMEOUT_MS = 30_000;
