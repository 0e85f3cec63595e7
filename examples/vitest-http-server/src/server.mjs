// A tiny HTTP API over postgres.js, as an application server would be: it reads its database from the
// environment and knows nothing about tests. Started as `node src/server.mjs`; prints the port it listens on.
import http from 'node:http';
import postgres from 'postgres';

const sql = postgres(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL, { onnotice: () => {} });

async function readJson(request) {
  let body = '';
  for await (const chunk of request) body += chunk;
  return JSON.parse(body);
}

const routes = {
  'GET /projects': async () => {
    const rows = await sql`SELECT slug FROM public.projects ORDER BY slug`;
    return { status: 200, body: rows.map((row) => row.slug) };
  },
  'POST /projects': async (request) => {
    const { clientSlug, slug, name } = await readJson(request);
    const [project] = await sql`
      INSERT INTO public.projects (client_id, slug, name)
      SELECT id, ${slug}, ${name} FROM public.clients WHERE slug = ${clientSlug}
      RETURNING slug, name`;
    return project ? { status: 201, body: project } : { status: 404, body: { error: 'no such client' } };
  },
};

const server = http.createServer(async (request, response) => {
  const route = routes[`${request.method} ${request.url}`];
  try {
    const { status, body } = route ? await route(request) : { status: 404, body: { error: 'not found' } };
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } catch (error) {
    response
      .writeHead(500, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: error.message }));
  }
});

server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
process.on('SIGTERM', () => server.close(() => sql.end().then(() => process.exit(0))));
