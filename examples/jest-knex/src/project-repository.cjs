/** Creates a project for the client with slug `clientSlug`. */
async function createProject(db, { clientSlug, slug, name }) {
  const client = await db('public.clients').where({ slug: clientSlug }).first('id');
  if (!client) throw new Error(`No client with slug ${clientSlug}`);
  const [project] = await db('public.projects')
    .insert({ client_id: client.id, slug, name })
    .returning(['id', 'slug', 'name']);
  return project;
}

/** The slugs of all projects, sorted. */
async function projectSlugs(db) {
  return (await db('public.projects').orderBy('slug').select('slug')).map((row) => row.slug);
}

/** The prompt `name` with its `{{variables}}` filled in. */
async function renderPrompt(db, name, variables) {
  const prompt = await db('public.prompts').where({ name }).first('template');
  if (!prompt) throw new Error(`No prompt named ${name}`);
  return prompt.template.replace(/\{\{(\w+)\}\}/g, (match, key) => variables[key] ?? match);
}

module.exports = { createProject, projectSlugs, renderPrompt };
