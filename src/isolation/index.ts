export {
  enableIsolation,
  DEFAULT_WAIT_TIMEOUT_MS,
  type Isolation,
  type IsolationOptions,
} from './enable-isolation.js';
export { withTestTransaction } from './with-test-transaction.js';
export { installIsolationHooks, type RunnerHooks, type IsolationHooks } from './runner-hooks.js';
export { LeakDetector, formatLeakReport, type LeakReport, type TableLeak } from './leak-detector.js';
export { exemptFromIsolation } from './exemption.js';
export type { SessionTarget } from './test-session.js';
