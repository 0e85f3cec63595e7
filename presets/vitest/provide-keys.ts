/** The `provide` key carrying the plugin's options to the global setup. */
export const OPTIONS_KEY = 'pgtwin:options';

/** The `provide` key carrying the global setup's handoff to the per-test setup file. */
export const HANDOFF_KEY = 'pgtwin:handoff';
