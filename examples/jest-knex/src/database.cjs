const knex = require('knex');

/** The application's database: the test database under test, production otherwise. */
function createDatabase() {
  return knex({ client: 'pg', connection: process.env.TEST_DATABASE_URL || process.env.DATABASE_URL });
}

module.exports = { createDatabase };
