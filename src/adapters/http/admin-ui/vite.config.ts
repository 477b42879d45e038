import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** `npm run build:admin`: the dashboard's static files into dist/admin, served at /admin by the server. */
const here = fileURLToPath(new URL('.', import.meta.url));
export default defineConfig({
  root: here,
  base: '/admin/',
  logLevel: 'warn',
  // Preact's JSX through Vite's own transform: no Babel preset needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../../../dist/admin', import.meta.url)),
    emptyOutDir: true,
    // The preload polyfill would be an inline script, which the page's CSP refuses.
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 300,
  },
});
