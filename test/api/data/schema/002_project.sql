CREATE SCHEMA project_alpha;
CREATE TABLE project_alpha.content_entries (id serial PRIMARY KEY, title text NOT NULL);
