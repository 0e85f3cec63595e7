const { Factory } = require('fishery');

/** Projects of the seeded client `acme`, inserted through the application's own connection. */
function projectFactory(db) {
  return Factory.define(({ sequence, onCreate }) => {
    onCreate(async (project) => {
      const client = await db('public.clients').where({ slug: 'acme' }).first('id');
      const [created] = await db('public.projects')
        .insert({ ...project, client_id: client.id })
        .returning(['id', 'slug']);
      return created;
    });
    return { slug: `factory-${sequence}`, name: `Factory project ${sequence}` };
  });
}

module.exports = { projectFactory };
