export { runGlobalSetup, type GlobalSetupOptions, type TwinSetup, type TwinSource } from './global-setup.js';
export type { PhaseNote, PhaseTiming, SetupPhaseName } from './setup-phase.js';
export type { SetupInputs } from './setup-inputs.js';
export {
  HANDOFF_VARIABLE,
  connectionDetails,
  maskConnectionDetails,
  readHandoff,
  workerEnvironment,
  workerTestTarget,
  type PgtwinConnection,
  type TargetFields,
  type TwinHandoff,
} from './worker-handoff.js';
export { installTestFileHooks, setIsolation } from './test-file-hooks.js';
export { runnerError } from './runner-error.js';
