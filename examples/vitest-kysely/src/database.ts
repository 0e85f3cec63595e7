import { Kysely, PostgresDialect, type Generated } from 'kysely';
import pg from 'pg';

export interface Database {
  'public.clients': { id: Generated<string>; name: string; slug: string; email: string | null };
  'public.projects': { id: Generated<string>; client_id: string; slug: string; name: string };
  'public.prompts': { id: Generated<number>; object_model_id: number; name: string; template: string };
  'public.object_models': { id: Generated<number>; name: string; version: number };
}

/** The application's database: the test database under test, production otherwise. */
export function createDatabase(): Kysely<Database> {
  const connectionString = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString }) }) });
}
