import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/main/config';

/** JWT_SECRET=new,old: rotation without logging everyone out (the HTTP side is in auth.test.ts). */
describe('JWT_SECRET as a list of secrets', () => {
  const keys = { FIELD_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 4).toString('base64')}`, PGLITE_DATA_DIR: 'memory://' };
  const NEW = 'n'.repeat(32);
  const OLD = 'o'.repeat(40);

  it('signs with the first and keeps the others for verifying, spaces around commas ignored', () => {
    const { jwt } = loadConfig({ ...keys, JWT_SECRET: `${NEW} , ${OLD}` });
    expect(jwt.key).to.equal(NEW);
    expect(jwt.olderKeys).to.deep.equal([OLD]);
    expect(loadConfig({ ...keys, JWT_SECRET: NEW }).jwt.olderKeys).to.equal(undefined);
  });

  for (const [what, value] of [
    ['a short second secret', `${NEW},short`],
    ['an empty entry (a trailing comma)', `${NEW},`],
    ['a short first secret', `short,${OLD}`],
  ]) {
    it(`refuses ${what}, naming JWT_SECRET`, () => {
      expect(() => loadConfig({ ...keys, JWT_SECRET: value! })).to.throw(ConfigError, /JWT_SECRET must be at least 32 bytes/);
    });
  }
});
