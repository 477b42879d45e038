import { expect } from 'chai';
import { runDemo } from '../../demo/two-devices';

describe('npm run demo', function () {
  this.timeout(60_000);

  it('plays the two-device story with every step holding', async () => {
    const lines: string[] = [];
    const ok = await runDemo((line) => lines.push(line));
    expect(lines.filter((l) => l.includes('✘')), lines.join('\n')).to.deep.equal([]);
    expect(lines.filter((l) => l.includes('✔')).length).to.be.at.least(9);
    expect(ok).to.equal(true);
  });
});
