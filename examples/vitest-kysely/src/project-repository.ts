import type { Kysely } from 'kysely';
import type { Database } from './database.js';

/** Creates a project for the client with slug `clientSlug`. */
export async function createProject(
  db: Kysely<Database>,
  input: { clientSlug: string; slug: string; name: string },
) {
  const client = await db
    .selectFrom('public.clients')
    .select('id')
    .where('slug', '=', input.clientSlug)
    .executeTakeFirstOrThrow();
  return db
    .insertInto('public.projects')
    .values({ client_id: client.id, slug: input.slug, name: input.name })
    .returning(['id', 'slug', 'name'])
    .executeTakeFirstOrThrow();
}

/** The slugs of all projects, sorted. */
export async function projectSlugs(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('public.projects').select('slug').orderBy('slug').execute();
  return rows.map((row) => row.slug);
}

/** The prompt `name` with its `{{variables}}` filled in. */
export async function renderPrompt(
  db: Kysely<Database>,
  name: string,
  variables: Record<string, string>,
): Promise<string> {
  const prompt = await db
    .selectFrom('public.prompts')
    .select('template')
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  return prompt.template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => variables[key] ?? `{{${key}}}`);
}
