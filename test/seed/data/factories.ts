import { Factory } from 'fishery';

/** A project row as the application's own factory builds it. */
export interface Project {
  id?: string;
  client_id?: string | number;
  slug: string;
  name: string;
  locale: string;
}

/** The user's factories module, loaded through `factories` in the config. */
export const factories = {
  project: Factory.define<Project>(({ sequence }) => ({
    slug: `custom-${sequence}`,
    name: `Custom project ${sequence}`,
    locale: 'de-DE',
  })),
};
