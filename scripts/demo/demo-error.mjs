/** A failure the demo explains in its message; printed without a stack trace or a hint to debug. */
export class DemoError extends Error {}
