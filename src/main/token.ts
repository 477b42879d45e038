import { signToken } from '../adapters/crypto/jwt-token-issuer';
import { ConfigError, loadConfig } from './config';

/** `npm run token -- USER [--admin] [--hours N]`: prints a token signed with the configured key. */
const args = process.argv.slice(2);
const user = args.find((a) => !a.startsWith('--'));
const hoursIndex = args.indexOf('--hours');
const hours = hoursIndex >= 0 ? Number(args[hoursIndex + 1]) : 24;
if (!user || !Number.isFinite(hours) || hours <= 0) {
  console.error('usage: npm run token -- USER [--admin] [--hours N]');
  process.exit(2);
}
try {
  const config = loadConfig();
  if (!config.jwt.algorithms.some((a) => a.startsWith('HS'))) {
    console.error('npm run token signs with JWT_SECRET; with JWT_PUBLIC_KEY, tokens come from your identity provider.');
    process.exit(2);
  }
  console.log(signToken(config.jwt, user, { admin: args.includes('--admin'), expiresInSeconds: Math.round(hours * 3600) }));
} catch (e) {
  console.error(e instanceof ConfigError ? `Configuration error: ${e.message}` : e);
  process.exit(1);
}
