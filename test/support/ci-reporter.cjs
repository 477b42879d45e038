// mocha's spec reporter, plus the run's real counts written as JSON to $MOCHA_RESULTS_FILE (read by
// .ci/run), and each test file's wall time (hooks included) beside it, so the slowest files of the
// CI budget are known from a real run.
const fs = require('node:fs');
const Mocha = require('mocha');

const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

class CiReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const started = new Map();
    const byFile = new Map();
    runner.on(EVENT_SUITE_BEGIN, (suite) => {
      if (suite.file && suite.parent && suite.parent.root) started.set(suite, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite) => {
      const t = started.get(suite);
      if (t === undefined) return;
      const file = require('node:path').relative(process.cwd(), suite.file);
      byFile.set(file, (byFile.get(file) || 0) + Date.now() - t);
    });
    runner.once(EVENT_RUN_END, () => {
      const file = process.env.MOCHA_RESULTS_FILE;
      if (!file) return;
      const s = runner.stats || {};
      fs.writeFileSync(file, JSON.stringify({ passes: s.passes || 0, failures: s.failures || 0, pending: s.pending || 0, tests: s.tests || 0 }));
      const files = [...byFile].sort((a, b) => b[1] - a[1]).map(([f, ms]) => ({ file: f, seconds: Math.round(ms / 100) / 10 }));
      fs.writeFileSync(file.replace(/\.json$/, '') + '-durations.json', JSON.stringify(files, null, 1));
    });
  }
}
module.exports = CiReporter;
