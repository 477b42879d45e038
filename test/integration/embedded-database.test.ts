import { expect } from 'chai';
import { getDatabase } from '../support/databases';

describe('the embedded database (PGlite)', () => {
  it('runs with 16 MB of shared buffers, not 128 MB: its memory never shrinks (docs/performance.md)', async function () {
    this.timeout(60_000);
    const { db } = await getDatabase('pglite');
    const shown = (await db.raw('SHOW shared_buffers')) as { rows: Array<{ shared_buffers: string }> };
    expect(shown.rows[0]!.shared_buffers).to.equal('16MB');
  });
});
