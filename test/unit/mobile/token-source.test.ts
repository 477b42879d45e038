import { expect } from 'chai';
import { TokenSource } from '../../../mobile/src/token-source';

/** The refresh-once rule both transports apply to a 401 (docs/mobile.md, "Token refresh"). */
describe('TokenSource', () => {
  /** An app whose refresh hands out fresh-1, fresh-2, … and can be held until released. */
  function app() {
    const a = {
      current: 'stale',
      refreshes: 0,
      release: () => undefined as void,
      held: null as Promise<void> | null,
      getToken: async (o?: { forceRefresh?: boolean }) => {
        if (!o?.forceRefresh) return a.current;
        a.refreshes++;
        if (a.held) await a.held;
        a.current = `fresh-${a.refreshes}`;
        return a.current;
      },
      hold: () => {
        a.held = new Promise<void>((resolve) => (a.release = resolve));
      },
    };
    return a;
  }

  it('asks the app once for requests refused together with the same token', async () => {
    const a = app();
    a.hold();
    const tokens = new TokenSource(a.getToken);
    const both = Promise.all([tokens.refresh('stale'), tokens.refresh('stale')]);
    a.release();
    expect(await both).to.deep.equal(['fresh-1', 'fresh-1']);
    expect(a.refreshes).to.equal(1);
  });

  it('gives a request refused just after the refresh the token already refreshed to', async () => {
    const a = app();
    const tokens = new TokenSource(a.getToken);
    expect(await tokens.refresh('stale')).to.equal('fresh-1');
    expect(await tokens.refresh('stale')).to.equal('fresh-1');
    expect(a.refreshes).to.equal(1);
  });

  it('asks again when the refreshed token is refused, or when the refresh gave the refused token back', async () => {
    const a = app();
    const tokens = new TokenSource(a.getToken);
    expect(await tokens.refresh('stale')).to.equal('fresh-1');
    expect(await tokens.refresh('fresh-1')).to.equal('fresh-2');
    let asked = 0;
    const counting = new TokenSource(async (o) => {
      if (o?.forceRefresh) asked++;
      return 'same';
    });
    expect(await counting.refresh('same')).to.equal('same');
    await counting.refresh('same');
    expect(asked, 'a refresh that changed nothing is not reused').to.equal(2);
  });

  it('passes on a refresh that failed, and asks again at the next refusal', async () => {
    let fail = true;
    let asked = 0;
    const tokens = new TokenSource(async (o) => {
      if (o?.forceRefresh) asked++;
      if (o?.forceRefresh && fail) throw new Error('refresh endpoint unreachable');
      return 'fresh';
    });
    let error: unknown;
    await tokens.refresh('stale').catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/unreachable/);
    fail = false;
    expect(await tokens.refresh('stale')).to.equal('fresh');
    expect(asked).to.equal(2);
  });
});
