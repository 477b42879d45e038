/** The layering of docs/architecture.md, checked on every `npm test`. */
module.exports = {
  forbidden: [
    {
      name: 'domain-no-infra',
      comment: 'src/domain is pure and runs unchanged in React Native: no I/O, no frameworks, nothing outside the domain but pure libraries.',
      severity: 'error',
      from: { path: '^src/domain' },
      to: {
        pathNot: ['^src/domain', '^node_modules/(neverthrow|zod)/', '^node_modules/@zod/'],
      },
    },
    {
      name: 'domain-no-node-builtins',
      severity: 'error',
      from: { path: '^src/domain' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'application-only-domain',
      comment: 'Use cases speak to ports; they never import adapters or the composition root.',
      severity: 'error',
      from: { path: '^src/application' },
      to: { path: '^src/(adapters|main)' },
    },
    {
      name: 'adapters-not-each-other',
      comment: 'Adapters meet only in src/main.',
      severity: 'error',
      from: { path: '^src/adapters/([^/]+)/' },
      to: { path: '^src/adapters/', pathNot: '^src/adapters/$1/' },
    },
    {
      name: 'adapters-not-main',
      severity: 'error',
      from: { path: '^src/adapters' },
      to: { path: '^src/main' },
    },
    {
      name: 'admin-ui-only-port-types',
      comment: "The dashboard runs in a browser: from the server's code it takes only the answers' types in src/application/ports (imported with `import type`, erased by the build; the parser here does not tell type-only imports apart).",
      severity: 'error',
      from: { path: '^src/adapters/http/admin-ui/' },
      to: { path: '^src/', pathNot: ['^src/adapters/http/admin-ui/', '^src/application/ports/'] },
    },
    {
      name: 'server-not-admin-ui',
      comment: 'The server serves the built dashboard; it never imports its browser code.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/adapters/http/admin-ui/' },
      to: { path: '^src/adapters/http/admin-ui/' },
    },
    {
      name: 'mobile-no-server',
      comment: 'mobile/ shares the domain core only.',
      severity: 'error',
      from: { path: '^mobile' },
      to: { path: '^src/', pathNot: '^src/domain' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // mobile/lib is the package's build output (git-ignored): its sources are cruised instead.
    exclude: { path: ['node_modules', '^mobile/lib/'] },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.cjs', '.mjs', '.json'] },
  },
};
