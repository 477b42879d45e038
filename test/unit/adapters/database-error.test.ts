import { expect } from 'chai';
import { databaseError } from '../../../src/adapters/postgres/errors';

describe('databaseError', () => {
  it("answers UNAVAILABLE for a connection that is gone, whichever of pg's ways says so", () => {
    const gone = [
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      new Error('Client was closed and is not queryable'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ];
    for (const e of gone) expect(databaseError(e).code, e.message).to.equal('UNAVAILABLE');
  });

  it('answers INTERNAL for a statement the database refused', () => {
    expect(databaseError(Object.assign(new Error('null value in column "id"'), { code: '23502' })).code).to.equal('INTERNAL');
  });
});
