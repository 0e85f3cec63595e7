#!/usr/bin/env -S node --
// `node --`: Node 20 reads `--env-file` even after the script name and exits 9 when the file is missing,
// before pgtwin runs; `--` leaves every argument to pgtwin's own --env-file.

// Node 20 has no `navigator`, so node-postgres, to tell whether it runs in Cloudflare Workers, constructs a
// `Response`, which loads undici: about 30 ms of every command's start. Node 21 and later define `navigator`
// as this does; it is removed again once node-postgres is loaded, which is when it looks.
const global = globalThis as { navigator?: unknown };
const shim = global.navigator === undefined;
if (shim) global.navigator = { userAgent: `Node.js/${process.versions.node}` };

void import('./main.js').then(async ({ main }) => {
  if (shim) delete global.navigator;
  process.exitCode = await main(process.argv.slice(2));
  // The work is done and reported; a connection some failure path left open must not keep CI waiting.
  setTimeout(() => process.exit(), 2000).unref();
});
