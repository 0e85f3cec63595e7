import fs from 'node:fs/promises';
import path from 'node:path';

/** Beside each cluster in the root cache: the data directory it belongs to, so its loss can be noticed. */
export const OWNER_FILE = 'data-dir';

/** Records, in a cluster's home in the cache, which project data directory it serves. */
export async function recordClusterOwner(home: string, dataDir: string): Promise<void> {
  await fs.writeFile(path.join(home, OWNER_FILE), `${dataDir}\n`, { mode: 0o644 });
}

/**
 * Deletes the clusters in `<cacheDir>/clusters` whose data directory no longer exists (a deleted clone, a
 * removed temporary folder, a test run killed before it cleaned up), unless a postmaster still runs in one.
 * As root each cluster lives outside its project, so deleting the project would otherwise leave it behind
 * for good. Clusters without an owner record (made by an older pgtwin) are kept. Returns the directories
 * removed.
 */
export async function removeOrphanClusters(
  cacheDir: string,
  /** Whether a postmaster runs in the cluster kept in `home`. */
  isRunning: (home: string) => Promise<boolean>,
): Promise<string[]> {
  const clusters = path.join(cacheDir, 'clusters');
  const entries = await fs.readdir(clusters).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const entry of entries) {
    const home = path.join(clusters, entry);
    const owner = await fs.readFile(path.join(home, OWNER_FILE), 'utf8').catch(() => undefined);
    if (owner === undefined) continue;
    const ownerExists = await fs.stat(owner.trim()).then(
      () => true,
      (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
    );
    if (ownerExists || (await isRunning(home))) continue;
    await fs.rm(home, { recursive: true, force: true });
    removed.push(home);
  }
  return removed;
}
