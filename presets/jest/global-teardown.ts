import { jestTwin } from './jest-twin.js';

/** Jest global teardown: closes what the global setup opened, except between the runs of watch mode. */
export default async function globalTeardown(globalConfig: {
  watch?: boolean;
  watchAll?: boolean;
}): Promise<void> {
  if (globalConfig.watch || globalConfig.watchAll) return;
  const twin = jestTwin.current;
  jestTwin.current = undefined;
  await twin?.close();
}
