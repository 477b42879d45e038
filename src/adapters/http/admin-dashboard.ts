import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Koa from 'koa';
import send from 'koa-send';

/**
 * The operators' dashboard: `/admin` serves the page that `npm run build:admin` built into `dir`
 * (hashed files under `/admin/assets/`). The page holds no data: it reads the admin API with the
 * token the operator types in, so these files are public like any sign-in page.
 */

// No inline script or style, nothing from another origin, no framing: a token typed into this
// page can only be sent to this server's API.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const missingPage = (dir: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dashboard not built</title></head>
<body><h1>The dashboard is not built</h1>
<p>Its files are missing from <code>${dir.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)}</code>. Build them with <code>npm run build:admin</code> (or <code>npm run build</code>); the server picks them up without a restart.</p>
</body></html>
`;

const exists = (file: string) => stat(file).then((s) => s.isFile(), () => false);

export function adminDashboard(dir: string): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path !== '/admin' && !ctx.path.startsWith('/admin/')) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const asset = ctx.path.startsWith('/admin/assets/');
    // The request metric's route label: one for the page, one for its files.
    (ctx as { _matchedRoute?: string })._matchedRoute = asset ? '/admin/assets' : '/admin';
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    if (asset) {
      // koa-send resolves the path under `dir` and refuses a way out of it (.., encoded or not).
      try {
        await send(ctx, ctx.path.slice('/admin/'.length), { root: dir, immutable: true, maxage: 365 * 24 * 3600 * 1000 });
      } catch (e) {
        const status = (e as { status?: number }).status;
        if (status !== 404 && status !== 400 && status !== 403) throw e;
        return next();
      }
      return;
    }
    if (!['/admin', '/admin/', '/admin/index.html'].includes(ctx.path)) return next();
    const index = join(dir, 'index.html');
    if (!(await exists(index))) {
      ctx.status = 503;
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = missingPage(dir);
      return;
    }
    // The page names its hashed files: always fetch it afresh so a new build is picked up.
    ctx.set('Cache-Control', 'no-cache');
    await send(ctx, 'index.html', { root: dir });
  };
}
