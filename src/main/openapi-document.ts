import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** docs/openapi.yaml, read and parsed once at start, served as GET /api/openapi.json. */
export function loadOpenApiDocument(file: URL = new URL('../../docs/openapi.yaml', import.meta.url)): Record<string, unknown> {
  return parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}
