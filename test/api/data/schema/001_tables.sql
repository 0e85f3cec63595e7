CREATE TABLE public.object_models (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.prompts (id int PRIMARY KEY, object_model_id int REFERENCES public.object_models (id), body text);
