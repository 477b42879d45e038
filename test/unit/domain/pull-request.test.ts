import { expect } from 'chai';
import { checkSchemaVersion, parsePullQuery, TABLE_NAMES, type ErrorDetail, type QueryParams } from '../../../src/domain';

/** The pull query (spec §4.1) and the schema version check (spec §4.4). */

const MAX = 500;
const parse = (query: QueryParams) => parsePullQuery(query, MAX);
const details = (query: QueryParams): ErrorDetail[] => {
  const error = parse(query)._unsafeUnwrapErr();
  expect(error.code).to.equal('VALIDATION_FAILED');
  return error.details as ErrorDetail[];
};

describe('parsePullQuery', () => {
  it('defaults to a first sync of every table in priority order, at the maximum limit', () => {
    const req = parse({})._unsafeUnwrap();
    expect(req.since).to.equal(null);
    expect(req.tables.map((t) => t.name)).to.deep.equal(['captures', 'todos', 'thoughts', 'ideas', 'projects']);
    expect(req.tables.map((t) => t.name)).to.deep.equal([...TABLE_NAMES]);
    expect(req.limit).to.equal(MAX);
    expect([...req.fullTables]).to.deep.equal([]);
  });

  describe('last_pulled_at', () => {
    for (const raw of ['', 'null', 'undefined', '0']) {
      it(`reads ${JSON.stringify(raw)} as a first sync`, () => {
        expect(parse({ last_pulled_at: raw })._unsafeUnwrap().since).to.equal(null);
      });
    }
    it('reads a millisecond cursor', () => {
      expect(parse({ last_pulled_at: '1736760600000' })._unsafeUnwrap().since).to.equal(1736760600000);
    });
    for (const raw of ['-1', '1.5', '1e3', 'abc', ' 12', '99999999999999999']) {
      it(`refuses ${JSON.stringify(raw)}`, () => {
        expect(details({ last_pulled_at: raw })).to.deep.equal([{ column: 'last_pulled_at', reason: 'must be a non-negative integer (milliseconds) or null' }]);
      });
    }
    it('refuses it given twice', () => {
      expect(details({ last_pulled_at: ['1', '2'] })).to.deep.equal([{ column: 'last_pulled_at', reason: 'given more than once' }]);
    });
  });

  describe('limit', () => {
    it('takes a smaller limit and caps a larger one at the maximum', () => {
      expect(parse({ limit: '7' })._unsafeUnwrap().limit).to.equal(7);
      expect(parse({ limit: '100000' })._unsafeUnwrap().limit).to.equal(MAX);
    });
    for (const raw of ['0', '-3', 'ten', '2.5']) {
      it(`refuses ${JSON.stringify(raw)}`, () => {
        expect(details({ limit: raw })[0]).to.include({ column: 'limit' });
      });
    }
  });

  describe('tables', () => {
    it('keeps the requested tables in priority order, whatever order they are listed in', () => {
      expect(parse({ tables: 'projects, todos,captures,' })._unsafeUnwrap().tables.map((t) => t.name)).to.deep.equal(['captures', 'todos', 'projects']);
    });
    for (const name of ['users', '__proto__', 'todos;drop table todos', 'constructor']) {
      it(`refuses the unknown table ${JSON.stringify(name)}`, () => {
        expect(details({ tables: `ideas,${name}` })).to.deep.equal([{ column: 'tables', table: name, reason: 'unknown table' }]);
      });
    }
  });

  describe('migration', () => {
    it('sends the tables it names, in tables or columns, in full', () => {
      const req = parse({ migration: JSON.stringify({ from: 1, tables: ['ideas'], columns: [{ table: 'todos', columns: ['deadline'] }] }) })._unsafeUnwrap();
      expect([...req.fullTables].sort()).to.deep.equal(['ideas', 'todos']);
    });
    it('ignores null and empty', () => {
      for (const migration of ['null', '']) expect(parse({ migration })._unsafeUnwrap().fullTables.size).to.equal(0);
    });
    for (const raw of ['{', '[]', '{"tables": "ideas"}', '{"columns": [{"columns": []}]}']) {
      it(`refuses ${raw}`, () => {
        expect(details({ migration: raw })[0]).to.include({ column: 'migration' });
      });
    }
    it('refuses an unknown table', () => {
      expect(details({ migration: '{"tables": ["ghosts"]}' })).to.deep.equal([{ column: 'migration', table: 'ghosts', reason: 'unknown table' }]);
    });
  });

  it('reports every bad parameter at once', () => {
    expect(details({ last_pulled_at: 'x', limit: '0', tables: 'nope' }).map((d) => d.column)).to.deep.equal(['last_pulled_at', 'limit', 'tables']);
  });
});

describe('checkSchemaVersion', () => {
  const range = { min: 2, max: 4 };

  it('accepts an absent version', () => {
    expect(checkSchemaVersion(undefined, range)._unsafeUnwrap()).to.equal(null);
    expect(checkSchemaVersion('', range)._unsafeUnwrap()).to.equal(null);
  });

  it('accepts the bounds and what lies between', () => {
    expect(['2', '3', '4'].map((v) => checkSchemaVersion(v, range)._unsafeUnwrap())).to.deep.equal([2, 3, 4]);
  });

  for (const v of ['1', '5', '0', '1000']) {
    it(`answers SCHEMA_VERSION_UNSUPPORTED with {min, max} for ${v}`, () => {
      const error = checkSchemaVersion(v, range)._unsafeUnwrapErr();
      expect(error.code).to.equal('SCHEMA_VERSION_UNSUPPORTED');
      expect(error.details).to.deep.equal({ min: 2, max: 4 });
    });
  }

  for (const v of ['two', '3.0', '-3', ' 3']) {
    it(`refuses ${JSON.stringify(v)} as invalid`, () => {
      const error = checkSchemaVersion(v, range)._unsafeUnwrapErr();
      expect(error.code).to.equal('VALIDATION_FAILED');
      expect(error.details).to.deep.equal([{ column: 'schema_version', reason: 'must be an integer' }]);
    });
  }
});
