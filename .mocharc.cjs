// One mocha run covers every suite; integration suites run once per database (test/support/databases.ts).
module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/**/*.test.ts'],
  require: ['test/support/hooks.ts'],
  reporter: 'test/support/ci-reporter.cjs',
  timeout: 30000,
  slow: 2000,
  exit: true,
};
