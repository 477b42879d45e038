import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { COMMON_COLUMNS, LOCAL_FIELDS, TABLES, type ColumnSpec, type TableSpec } from '../../src/domain/schema';

/**
 * The API's OpenAPI 3.1 description (docs/openapi.yaml), and a checker of real requests and answers
 * against it: statuses, media types, bodies and headers, validated by Ajv's JSON Schema 2020-12
 * (the dialect of OpenAPI 3.1 schemas) in strict mode, so a misspelt keyword fails too.
 */

export const OPENAPI_FILE = fileURLToPath(new URL('../../docs/openapi.yaml', import.meta.url));

export type OpenApiDocument = Record<string, any>;

/** Reads docs/openapi.yaml and returns the parsed document (a new object on every call). */
export function loadOpenApi(file: string = OPENAPI_FILE): OpenApiDocument {
  return parse(readFileSync(file, 'utf8')) as OpenApiDocument;
}

/** The document's own vocabulary: keys of the OpenAPI object, and the `x-` extensions used in its schemas. */
const OPENAPI_KEYWORDS = ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs'];
const SCHEMA_EXTENSIONS = ['x-sensitive', 'x-server-owned'];
const DOC_ID = 'https://note-sync.invalid/openapi.json';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** A JSON pointer segment (RFC 6901). */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The value at a JSON pointer of `doc` ('' is the document), or undefined. */
export function atPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Ajv for the document's schemas: 2020-12, strict, every format of ajv-formats (int64 among them). */
export function createSchemaValidator(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary([...OPENAPI_KEYWORDS, ...SCHEMA_EXTENSIONS]);
  return ajv;
}

/** What the checker needs of an HTTP answer (`send` of http-helpers gives it). */
export interface SeenAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface SentRequest {
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
}

/** Headers every HTTP client sends that an OpenAPI document does not list as parameters. */
const TRANSPORT_HEADERS = new Set(['authorization', 'content-type', 'content-length', 'accept', 'accept-encoding', 'user-agent', 'connection', 'host']);

export class OpenApiContract {
  readonly doc: OpenApiDocument;
  readonly ajv: Ajv2020;
  /** Every `METHOD path status` checked so far. */
  readonly seen = new Set<string>();

  constructor(doc: OpenApiDocument = loadOpenApi()) {
    this.doc = doc;
    this.ajv = createSchemaValidator();
    this.ajv.addSchema({ ...doc, $id: DOC_ID });
  }

  /** Every operation of the document, as `GET /path`. */
  operations(): string[] {
    const out: string[] = [];
    for (const [path, item] of Object.entries<Record<string, unknown>>(this.doc['paths'] ?? {})) {
      for (const method of HTTP_METHODS) if (item[method]) out.push(`${method.toUpperCase()} ${path}`);
    }
    return out;
  }

  /** The compiled validator of the schema at a JSON pointer of the document. */
  validatorAt(pointer: string): ValidateFunction {
    const v = this.ajv.getSchema(`${DOC_ID}#${pointer}`);
    if (!v) throw new Error(`no schema at #${pointer}`);
    return v;
  }

  /** Problems of `value` against the schema at `pointer` (none when it is valid). */
  schemaProblems(pointer: string, value: unknown, label = 'value'): string[] {
    const v = this.validatorAt(pointer);
    return v(value) ? [] : [`${label} against #${pointer}: ${this.ajv.errorsText(v.errors, { dataVar: label, separator: '; ' })}`];
  }

  /** Follows `$ref`s (local ones) from the node at `pointer`. */
  deref(pointer: string): { node: Record<string, any>; pointer: string } {
    let at = pointer;
    for (let hops = 0; hops < 20; hops++) {
      const node = atPointer(this.doc, at) as Record<string, any> | undefined;
      if (node === undefined) throw new Error(`#${at} does not resolve`);
      const ref = node['$ref'];
      if (typeof ref !== 'string') return { node, pointer: at };
      if (!ref.startsWith('#')) throw new Error(`external $ref ${ref} at #${at}`);
      at = decodeURIComponent(ref.slice(1));
    }
    throw new Error(`$ref loop at #${pointer}`);
  }

  private operationPointer(method: string, path: string): string | undefined {
    const pointer = `/paths/${escapePointer(path)}/${method.toLowerCase()}`;
    return atPointer(this.doc, pointer) === undefined ? undefined : pointer;
  }

  /**
   * Problems of a real answer of `method path` (a path of the document): its status must be
   * documented for the operation, and its headers, media type and body must fit that response.
   */
  responseProblems(method: string, path: string, answer: SeenAnswer): string[] {
    this.seen.add(`${method.toUpperCase()} ${path} ${answer.status}`);
    const op = this.operationPointer(method, path);
    if (!op) return [`${method.toUpperCase()} ${path} is not in the document`];
    const responses = atPointer(this.doc, `${op}/responses`) as Record<string, unknown>;
    const status = String(answer.status);
    const key = [status, `${status[0]}XX`, 'default'].find((k) => Object.hasOwn(responses, k));
    if (!key) return [`status ${status} is not documented for ${method.toUpperCase()} ${path} (documented: ${Object.keys(responses).join(', ')})`];
    return this.answerProblems(`${op}/responses/${key}`, answer);
  }

  /** Problems of an answer against a response object of the document (e.g. `/components/responses/NotFound`). */
  answerProblems(responsePointer: string, answer: SeenAnswer): string[] {
    const problems: string[] = [];
    const response = this.deref(responsePointer);
    for (const name of Object.keys(response.node['headers'] ?? {})) {
      const header = this.deref(`${response.pointer}/headers/${escapePointer(name)}`);
      const value = answer.headers.get(name);
      if (value === null) {
        if (header.node['required']) problems.push(`header ${name} is missing`);
      } else problems.push(...this.schemaProblems(`${header.pointer}/schema`, this.parameterValue(`${header.pointer}/schema`, value), `header ${name}`));
    }
    const content = response.node['content'] as Record<string, unknown> | undefined;
    if (!content) return answer.text === '' ? problems : [...problems, 'a body where the document has none'];
    const got = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const mediaType = Object.keys(content).find((k) => k.toLowerCase() === got || (k.endsWith('/*') && got.startsWith(k.slice(0, -1))) || k === '*/*');
    if (!mediaType) return [...problems, `content type "${got}" is not documented (${Object.keys(content).join(', ')})`];
    let body: unknown = answer.text;
    if (/[/+]json$/.test(mediaType)) {
      try {
        body = JSON.parse(answer.text);
      } catch {
        return [...problems, `the body is not JSON: ${answer.text.slice(0, 200)}`];
      }
    }
    return [...problems, ...this.schemaProblems(`${response.pointer}/content/${escapePointer(mediaType)}/schema`, body, 'body')];
  }

  /** Problems of a request the tests send: each query parameter and header documented and valid, the body valid. */
  requestProblems(method: string, path: string, request: SentRequest): string[] {
    const op = this.operationPointer(method, path);
    if (!op) return [`${method.toUpperCase()} ${path} is not in the document`];
    const pathItem = `/paths/${escapePointer(path)}`;
    const params: Array<{ node: Record<string, any>; pointer: string }> = [];
    for (const base of [pathItem, op]) {
      const list = (atPointer(this.doc, `${base}/parameters`) ?? []) as unknown[];
      list.forEach((_, i) => params.push(this.deref(`${base}/parameters/${i}`)));
    }
    const problems: string[] = [];
    const check = (location: 'query' | 'header', name: string, raw: string) => {
      const param = params.find((p) => p.node['in'] === location && (location === 'query' ? p.node['name'] === name : String(p.node['name']).toLowerCase() === name.toLowerCase()));
      if (!param) return void problems.push(`${location} parameter ${name} is not documented for ${method.toUpperCase()} ${path}`);
      if (param.node['content']) {
        const [mediaType] = Object.keys(param.node['content']);
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          return void problems.push(`${location} parameter ${name}: not JSON`);
        }
        problems.push(...this.schemaProblems(`${param.pointer}/content/${escapePointer(mediaType!)}/schema`, value, name));
      } else {
        problems.push(...this.schemaProblems(`${param.pointer}/schema`, this.parameterValue(`${param.pointer}/schema`, raw), name));
      }
    };
    for (const [name, raw] of Object.entries(request.query ?? {})) check('query', name, raw);
    for (const [name, raw] of Object.entries(request.headers ?? {})) if (!TRANSPORT_HEADERS.has(name.toLowerCase())) check('header', name, raw);
    if (request.body !== undefined) {
      if (atPointer(this.doc, `${op}/requestBody`) === undefined) return [...problems, `${method.toUpperCase()} ${path} documents no body`];
      const body = this.deref(`${op}/requestBody`);
      problems.push(...this.schemaProblems(`${body.pointer}/content/application~1json/schema`, request.body, 'request body'));
    }
    return problems;
  }

  /** A query or header value as the typed value its schema describes (form style, comma lists not exploded). */
  private parameterValue(schemaPointer: string, raw: string): unknown {
    const schema = this.deref(schemaPointer);
    const types = ([] as unknown[]).concat(schema.node['type'] ?? []);
    if (types.includes('array')) return raw === '' ? [] : raw.split(',').map((item) => this.parameterValue(`${schema.pointer}/items`, item));
    if (types.includes('null') && (raw === '' || raw === 'null')) return null;
    if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    if (types.includes('boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
    return raw;
  }
}

/** Every `$ref` in the document, with where it is. */
export function collectRefs(node: unknown, at = ''): Array<{ ref: string; at: string }> {
  if (node === null || typeof node !== 'object') return [];
  const out: Array<{ ref: string; at: string }> = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') out.push({ ref: value, at });
    else out.push(...collectRefs(value, `${at}/${escapePointer(key)}`));
  }
  return out;
}

/**
 * The schemas the domain's table definitions (src/domain/schema.ts) imply, by component name: for
 * each table its pulled record, its pushed record and their change sets, the two per-table maps and
 * `TableName`. The document must hold exactly these (annotations such as `description` aside).
 */
export function schemasFromDomain(tables: readonly TableSpec[] = TABLES): Record<string, unknown> {
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const out: Record<string, unknown> = { TableName: { type: 'string', enum: tables.map((t) => t.name) } };
  const pulledCommon: Record<(typeof COMMON_COLUMNS)[number], unknown> = { id: ref('Id'), created_at: ref('Millis'), last_modified_at: ref('Cursor') };
  // On push, last_modified_at is WatermelonDB's local copy (null before the first sync), ignored by the server.
  const pushedCommon: Record<(typeof COMMON_COLUMNS)[number], unknown> = { id: ref('Id'), created_at: ref('Millis'), last_modified_at: { type: ['number', 'null'] } };
  const localFields: Record<(typeof LOCAL_FIELDS)[number], unknown> = { _status: { type: 'string' }, _changed: { type: 'string' } };
  const pullTables: Record<string, unknown> = {};
  const pushTables: Record<string, unknown> = {};
  for (const table of tables) {
    const name = table.name[0]!.toUpperCase() + table.name.slice(1);
    const columns = Object.keys(table.columns);
    const columnSchemas = (push: boolean) => Object.fromEntries(columns.map((c) => [c, columnSchema(table.columns[c]!, push)]));
    out[`${name}Record`] = {
      type: 'object',
      required: ['id', ...columns, 'created_at', 'last_modified_at'],
      additionalProperties: false,
      properties: { ...pick(pulledCommon, COMMON_COLUMNS), ...columnSchemas(false) },
    };
    out[`${name}PushRecord`] = {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { ...pick(pushedCommon, COMMON_COLUMNS), ...pick(localFields, LOCAL_FIELDS), user_id: { type: 'string' }, ...columnSchemas(true) },
    };
    out[`${name}Changes`] = {
      type: 'object',
      required: ['created', 'updated', 'deleted'],
      additionalProperties: false,
      properties: { created: { type: 'array', items: ref(`${name}Record`) }, updated: { type: 'array', items: ref(`${name}Record`) }, deleted: { type: 'array', items: ref('Id') } },
    };
    out[`${name}PushChanges`] = {
      type: 'object',
      additionalProperties: false,
      properties: { created: { type: 'array', items: ref(`${name}PushRecord`) }, updated: { type: 'array', items: ref(`${name}PushRecord`) }, deleted: { type: 'array', items: ref('Id') } },
    };
    pullTables[table.name] = ref(`${name}Changes`);
    pushTables[table.name] = ref(`${name}PushChanges`);
  }
  out['PullChanges'] = { type: 'object', additionalProperties: false, properties: pullTables };
  out['PushChanges'] = { type: 'object', additionalProperties: false, properties: pushTables };
  return out;
}

/** Each of `names` from `schemas`; a name the map lacks (a new common column or local field) throws, so it cannot be forgotten. */
function pick(schemas: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    names.map((n) => {
      if (!Object.hasOwn(schemas, n)) throw new Error(`no wire schema for the common field ${n}: add it to schemasFromDomain and docs/openapi.yaml`);
      return [n, schemas[n]];
    }),
  );
}

const COLUMN_TYPES: Record<ColumnSpec['type'], Record<string, unknown>> = {
  text: { type: 'string' },
  integer: { type: 'integer', format: 'int64' },
  boolean: { type: 'boolean' },
  // WatermelonDB keeps JSON arrays as strings; the content keywords say so (as annotations).
  json_array: { type: 'string', contentMediaType: 'application/json', contentSchema: { type: 'array' } },
};

/** A column's JSON Schema; a pushed column also shows the default a new row takes without it. */
export function columnSchema(spec: ColumnSpec, push: boolean): Record<string, unknown> {
  const base = COLUMN_TYPES[spec.type];
  if (!base) throw new Error(`no wire schema for the column type ${spec.type}`);
  const s: Record<string, unknown> = { ...base, ...(spec.nullable ? { type: [base['type'], 'null'] } : {}) };
  if (spec.enum) s['enum'] = spec.nullable ? [...spec.enum, null] : [...spec.enum];
  if (spec.sensitive) s['x-sensitive'] = true;
  if (spec.serverOwned) s['x-server-owned'] = true;
  if (push && spec.default !== undefined) s['default'] = spec.default;
  return s;
}

/** A schema without its annotations (description, title, examples, $comment), for comparing structure. */
export function withoutAnnotations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutAnnotations);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k]) => !['description', 'title', 'examples', '$comment'].includes(k))
      // In a map of schemas the keys are names (a column may be called `description`): keep them all.
      .map(([k, v]) => [k, SCHEMA_MAPS.has(k) && v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([n, s]) => [n, withoutAnnotations(s)])) : withoutAnnotations(v)]),
  );
}

const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'dependentSchemas']);
