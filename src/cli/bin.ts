#!/usr/bin/env node
import { main } from './main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The work is done and reported; a connection some failure path left open must not keep CI waiting.
  setTimeout(() => process.exit(), 2000).unref();
});
