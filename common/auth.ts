// Bearer-token checks shared by every HTTP surface, and the rule that a process able to
// unleash load never listens beyond loopback without a token.
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';

/** True when the Authorization header carries exactly `Bearer <token>`. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Refuses to listen on a non-loopback address without a token. */
export function assertSafeListen(command: string, flag: string, host: string, token: string | undefined): void {
  if (!token && !isLoopbackHost(host)) {
    throw new ConfigError(
      `hongbao ${command}: --${flag} ${host} is not a loopback address and no token is set: set HONGBAO_TOKEN (or --token) first, this process can unleash load`,
    );
  }
}
