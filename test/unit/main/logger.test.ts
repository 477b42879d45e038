import { expect } from 'chai';
import { Writable } from 'node:stream';
import { ConfigError } from '../../../src/main/config';
import { chooseLogFormat, createLogger } from '../../../src/main/logger';

describe('the log format', () => {
  it('is readable lines on a terminal outside production, JSON lines otherwise', () => {
    expect(chooseLogFormat({ production: false, isTTY: true })).to.equal('pretty');
    expect(chooseLogFormat({ production: false, isTTY: false }), 'piped or redirected').to.equal('json');
    expect(chooseLogFormat({ production: true, isTTY: true }), 'production, even on a terminal').to.equal('json');
    expect(chooseLogFormat({ production: true, isTTY: false })).to.equal('json');
  });

  it('LOG_FORMAT overrides the choice both ways; auto or blank keeps it; anything else is refused, naming it', () => {
    expect(chooseLogFormat({ production: true, isTTY: true, override: 'pretty' })).to.equal('pretty');
    expect(chooseLogFormat({ production: false, isTTY: true, override: 'JSON' })).to.equal('json');
    expect(chooseLogFormat({ production: false, isTTY: true, override: 'auto' })).to.equal('pretty');
    expect(chooseLogFormat({ production: false, isTTY: true, override: ' ' })).to.equal('pretty');
    expect(() => chooseLogFormat({ production: false, isTTY: true, override: 'xml' })).to.throw(ConfigError, /LOG_FORMAT.*"xml"/);
  });

  it('writes JSON objects in json format and plain text (not JSON) in pretty format', async () => {
    let out = '';
    const sink = new Writable({ write: (chunk, _encoding, done) => ((out += String(chunk)), done()) });
    (await createLogger('info', 'json', sink)).info({ user: 'u1' }, 'json line');
    (await createLogger('info', 'pretty', sink)).info({ user: 'u2' }, 'pretty line');
    const lines = out.split('\n');
    const jsonLine = lines.find((l) => l.includes('json line'))!;
    expect(JSON.parse(jsonLine)).to.include({ msg: 'json line', user: 'u1', level: 30 });
    const prettyLine = lines.find((l) => l.includes('pretty line'))!;
    expect(() => JSON.parse(prettyLine)).to.throw();
    expect(prettyLine).to.match(/INFO.*pretty line/);
    expect(out).to.match(/user: "u2"/);
  });
});
