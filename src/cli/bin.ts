#!/usr/bin/env -S node --
// `node --`: Node 20 reads `--env-file` even after the script name and exits 9 when the file is missing,
// before pgtwin runs; `--` leaves every argument to pgtwin's own --env-file.
import { main } from './main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The work is done and reported; a connection some failure path left open must not keep CI waiting.
  setTimeout(() => process.exit(), 2000).unref();
});
