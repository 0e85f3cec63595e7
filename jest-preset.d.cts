/** pgtwin's Jest preset: use it as `preset: 'pgtwin'` in the Jest config. */
declare const preset: {
  testEnvironment: string;
  globalSetup: string;
  globalTeardown: string;
  setupFilesAfterEnv: string[];
};
export = preset;
