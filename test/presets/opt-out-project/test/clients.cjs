// Both runners' specs connect from the settings of the moment, as pgtwin's README asks of code that runs in
// opted-out tests, and end their clients before the test's copy is dropped.
const pg = require('pg');

const open = [];

/** A client connected to `TEST_DATABASE_URL` as it is now. */
exports.connect = async function connect() {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  open.push(client);
  await client.connect();
  return client;
};

/** Ends every client {@link connect} opened; for `afterEach`. */
exports.endClients = async function endClients() {
  await Promise.all(open.splice(0).map((client) => client.end()));
};
