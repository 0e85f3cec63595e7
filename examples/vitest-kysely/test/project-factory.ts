import { Factory } from 'fishery';
import type { Kysely } from 'kysely';
import type { Database } from '../src/database.js';

/** Projects of the seeded client `acme`, inserted through the application's own connection. */
export function projectFactory(db: Kysely<Database>) {
  return Factory.define<{ slug: string; name: string }, Record<string, never>, { id: string; slug: string }>(
    ({ sequence, onCreate }) => {
      onCreate(async (project) => {
        const client = await db
          .selectFrom('public.clients')
          .select('id')
          .where('slug', '=', 'acme')
          .executeTakeFirstOrThrow();
        return db
          .insertInto('public.projects')
          .values({ ...project, client_id: client.id })
          .returning(['id', 'slug'])
          .executeTakeFirstOrThrow();
      });
      return { slug: `factory-${sequence}`, name: `Factory project ${sequence}` };
    },
  );
}
