/** See bundle-source.mjs. */
export function bundleSource(
  source:
    | { entry: string; contents?: undefined; name: string }
    | { entry?: undefined; contents: string; name: string },
): Promise<string>;
