// One mocha run covers every suite; integration suites run once per database (test/support/databases.ts).
// Files named on the command line (`npx mocha test/x.test.ts`) run alone: the default spec is only
// used when none are given (mocha would otherwise add every suite to the ones named).
const argv = process.argv.slice(2);
const named = argv.some((a, i) => !a.startsWith('-') && /\.(c|m)?[jt]s$/.test(a) && !/^(-r|--require|--file|--config|--reporter|-R|--ignore)$/.test(argv[i - 1] ?? ''));
module.exports = {
  'node-option': ['import=tsx'],
  spec: named ? [] : ['test/**/*.test.ts'],
  require: ['test/support/hooks.ts'],
  reporter: 'test/support/ci-reporter.cjs',
  timeout: 30000,
  slow: 2000,
  // No `exit: true`: it would hide handles a test leaves open. test/support/hooks.ts fails the run
  // naming them instead, and ends the process if something still holds it.
};
