import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { ERROR_CODES } from '../../src/domain/errors';
import { TABLES } from '../../src/domain/schema';
import { atPointer, collectRefs, createSchemaValidator, escapePointer, loadOpenApi, OpenApiContract, schemasFromDomain, withoutAnnotations } from '../support/openapi';

/**
 * docs/openapi.yaml on its own: valid OpenAPI 3.1, every reference and schema sound, and in step
 * with the code it describes — the synced tables of src/domain/schema.ts (a new column or table
 * cannot be forgotten), the error codes of src/domain/errors.ts and the table of docs/protocol.md.
 * test/integration/openapi.test.ts checks the running server's answers against it.
 */

const doc = loadOpenApi();
const schemas = doc['components']['schemas'] as Record<string, unknown>;

/** Where the document holds a schema: every component schema, and the `schema` of each parameter, header and media type. */
function schemaPointers(node: unknown, at = ''): string[] {
  if (node === null || typeof node !== 'object') return [];
  if (at === '/components/schemas') return Object.keys(node).map((k) => `${at}/${escapePointer(k)}`);
  return Object.entries(node).flatMap(([k, v]) => (k === 'schema' ? [`${at}/schema`] : schemaPointers(v, `${at}/${escapePointer(k)}`)));
}

/** The rows `| 400 | `VALIDATION_FAILED` | …` of the error table of docs/protocol.md. */
function protocolErrorTable(): Map<string, number> {
  const text = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const rows = [...text.matchAll(/^\|\s*(\d{3})\s*\|\s*`([A-Z_]+)`\s*\|/gm)];
  return new Map(rows.map((m) => [m[2]!, Number(m[1])]));
}

describe('OpenAPI document (docs/openapi.yaml)', () => {
  it('is valid OpenAPI 3.1 by the official 3.1 schema', async () => {
    expect(doc['openapi']).to.match(/^3\.1\.\d+$/);
    const validator = new Validator();
    const result = await validator.validate(loadOpenApi());
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal('3.1');
  });

  it('has only local $refs, and each one resolves', () => {
    const refs = collectRefs(doc);
    expect(refs.length).to.be.greaterThan(50);
    for (const { ref, at } of refs) {
      expect(ref, `$ref at #${at}`).to.match(/^#\//);
      expect(atPointer(doc, decodeURIComponent(ref.slice(1))), `${ref} at #${at}`).not.to.equal(undefined);
    }
  });

  it('holds only valid JSON Schema 2020-12, which compiles in strict mode (no unknown keyword)', () => {
    const ajv = createSchemaValidator();
    const contract = new OpenApiContract(doc);
    const pointers = schemaPointers(doc);
    expect(pointers.length).to.be.greaterThan(60);
    for (const pointer of pointers) {
      const schema = atPointer(doc, pointer) as object;
      expect(ajv.validateSchema(schema), `#${pointer}: ${ajv.errorsText(ajv.errors)}`).to.equal(true);
      expect(() => contract.validatorAt(pointer), `#${pointer}`).not.to.throw();
    }
  });

  it('describes each synced table exactly as src/domain/schema.ts defines it (columns, types, enums, nullability, defaults)', () => {
    const expected = schemasFromDomain();
    for (const [name, schema] of Object.entries(expected)) {
      expect(schemas, `components.schemas.${name} is missing; it should be:\n${stringify({ [name]: schema })}`).to.have.property(name);
      expect(withoutAnnotations(schemas[name]), `components.schemas.${name} differs from the domain; it should be:\n${stringify({ [name]: schema })}`).to.deep.equal(schema);
    }
    // No schema of a table the domain does not have.
    for (const name of Object.keys(schemas).filter((n) => /(Record|Changes)$/.test(n))) {
      expect(expected, `components.schemas.${name} describes no table of src/domain/schema.ts`).to.have.property(name);
    }
    expect(Object.keys(expected).filter((n) => n.endsWith('PushRecord'))).to.have.length(TABLES.length);
  });

  it('validates real records the way the server does: a full row, a partial push, a wrong type or enum, an unknown column', () => {
    const contract = new OpenApiContract(doc);
    const capture = { id: 'c1', type: 'text', raw_content: 'x', normalized_text: null, state: 'ready', tags: '["a"]', project_id: null, duration_ms: 1200, created_at: 1, last_modified_at: 2 };
    expect(contract.schemaProblems('/components/schemas/CapturesRecord', capture)).to.deep.equal([]);
    const partial = { id: 'c1', state: 'failed', _changed: 'state', _status: 'updated', last_modified_at: null };
    expect(contract.schemaProblems('/components/schemas/CapturesPushRecord', partial)).to.deep.equal([]);
    for (const bad of [{ ...partial, state: 'lost' }, { ...partial, duration_ms: 1.5 }, { ...partial, colour: 'red' }, { ...partial, id: '' }, { ...capture, normalized_text: 3 }]) {
      expect(contract.schemaProblems('/components/schemas/CapturesPushRecord', bad), JSON.stringify(bad)).not.to.deep.equal([]);
    }
    const { duration_ms: _dropped, ...incomplete } = capture;
    expect(contract.schemaProblems('/components/schemas/CapturesRecord', incomplete)).not.to.deep.equal([]);
  });

  it('lists the error codes of src/domain/errors.ts with their statuses, in agreement with docs/protocol.md', () => {
    expect([...(schemas['ErrorCode'] as { enum: string[] }).enum].sort()).to.deep.equal(Object.keys(ERROR_CODES).sort());
    const table = protocolErrorTable();
    expect([...table.keys()].sort(), 'the codes of the error table of docs/protocol.md').to.deep.equal(Object.keys(ERROR_CODES).sort());
    for (const [code, status] of table) expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status, `status of ${code} in docs/protocol.md`).to.equal(status);
    // Each error response of an operation names, by its code, the status it is documented under.
    const contract = new OpenApiContract(doc);
    for (const op of contract.operations()) {
      const [method, path] = op.split(' ') as [string, string];
      const responses = atPointer(doc, `/paths/${escapePointer(path)}/${method.toLowerCase()}/responses`) as Record<string, unknown>;
      for (const status of Object.keys(responses).filter((s) => Number(s) >= 400)) {
        const response = contract.deref(`/paths/${escapePointer(path)}/${method.toLowerCase()}/responses/${status}`);
        const schema = contract.deref(`${response.pointer}/content/application~1json/schema`).node;
        // A fixed code, or (401) the list of codes sharing that status.
        const codeSchema = (schema['allOf'] as Array<Record<string, any>> | undefined)?.[1]?.['properties']?.['error']?.['properties']?.['code'];
        const codes: unknown[] = codeSchema?.['const'] !== undefined ? [codeSchema['const']] : (codeSchema?.['enum'] ?? []);
        expect(codes, `${op} ${status}: an error schema with a fixed code (or a list of codes)`).to.not.be.empty;
        for (const code of codes) {
          expect(code, `${op} ${status}`).to.be.a('string');
          expect(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, `${op} ${status} documents ${code}`).to.equal(Number(status));
        }
      }
    }
  });

  it('asks a bearer token on every /api route but the document itself (documenting 401 and 429) and none on the operations routes', () => {
    expect(doc['components']['securitySchemes']['bearerAuth']).to.include({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc['security']).to.deep.equal([{ bearerAuth: [] }]);
    const contract = new OpenApiContract(doc);
    for (const op of contract.operations()) {
      const [method, path] = op.split(' ') as [string, string];
      const operation = atPointer(doc, `/paths/${escapePointer(path)}/${method.toLowerCase()}`) as Record<string, any>;
      if (path === '/api/openapi.json') {
        // The API's documentation is public: no token, so no 401; still rate-limited per IP.
        expect(operation['security'], op).to.deep.equal([]);
        expect(Object.keys(operation['responses']), op).to.include('429').and.not.include('401');
      } else if (path.startsWith('/api/')) {
        expect(operation['security'], op).to.equal(undefined);
        expect(Object.keys(operation['responses']), op).to.include.members(['401', '429']);
      } else if (path === '/metrics') {
        // No token where the metrics listener is reached, or METRICS_TOKEN (issue 20, item 11).
        expect(operation['security'], op).to.deep.equal([{}, { metricsToken: [] }]);
        expect(Object.keys(operation['responses']), op).to.include.members(['401', '404']);
      } else {
        expect(operation['security'], op).to.deep.equal([]);
      }
      expect(Object.keys(operation['responses']), `${op} documents server faults`).to.include('500');
    }
  });
});
