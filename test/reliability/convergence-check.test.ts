import { expect } from 'chai';
import { lostAcknowledgedWrite } from '../support/convergence/model';

/**
 * Check 2 of the convergence runs for one column, on the case a 10-minute soak reported as a lost
 * write (captures/d3i39.state, an enum column, so values repeat): the create's "failed" was
 * acknowledged; a later push of "ready" was applied but its answer was cut off; its retry went
 * under a new push_id (the batch had changed) and met a conflict, so the server "kept its own
 * value", which was that same "ready". The server holding "ready" is right, and no write was lost.
 */
describe('convergence check: the latest acknowledged write of a column', () => {
  const created = { value: 'failed', ts: 100, sentAt: 1_000 };

  it('accepts a value from a push whose answer was lost after the acknowledged push was sent', () => {
    expect(lostAcknowledgedWrite([created], [{ value: 'ready', failedAt: 1_200 }], 'ready')).to.equal(null);
  });

  it('reports the acknowledged write when the server holds a value no later push sent', () => {
    expect(lostAcknowledgedWrite([created], [], 'ready')).to.deep.include({ value: 'failed', ts: 100 });
    expect(lostAcknowledgedWrite([created], [{ value: 'processing', failedAt: 1_200 }], 'ready')).to.deep.include({ value: 'failed' });
  });

  it('reports it when the unanswered push failed before the acknowledged one was sent (it was applied first, if at all)', () => {
    expect(lostAcknowledgedWrite([created], [{ value: 'ready', failedAt: 900 }], 'ready')).to.deep.include({ value: 'failed' });
  });

  it("takes the latest write by the server's commit order, whatever order the answers came in", () => {
    const later = { value: 'ready', ts: 300, sentAt: 900 };
    expect(lostAcknowledgedWrite([later, created], [], 'ready')).to.equal(null);
    expect(lostAcknowledgedWrite([later, created], [], 'failed')).to.deep.include({ value: 'ready', ts: 300 });
  });

  it('reports a row missing from the server, whatever was sent without an answer', () => {
    expect(lostAcknowledgedWrite([created], [{ value: 'ready', failedAt: 1_200 }], undefined)).to.deep.include({ value: 'failed' });
  });

  it('has nothing to report for a column no answer acknowledged', () => {
    expect(lostAcknowledgedWrite([], [{ value: 'ready', failedAt: 1_200 }], 'ready')).to.equal(null);
  });
});
