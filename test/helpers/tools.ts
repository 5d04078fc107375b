// System tools some tests need (test/ensure-tools.sh installs them in CI or on `npm run setup:test`).
// A test whose tool is missing is test.skip with a title that says what to install, never a green
// pass; in CI (CI=true) it runs anyway and fails, since CI must have installed the tool.
import test from 'ava';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);

/** Absolute path of a command on PATH (or in sbin), or undefined. */
export function which(command: string): string | undefined {
  for (const dir of SEARCH) {
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** [command, Debian package] pairs of the tools a test needs. */
export type Tool = readonly [command: string, pkg: string];

/**
 * The ava test function for a test that needs `tools`: test (or test.serial) when they are all
 * installed or in CI, else test.skip; and the suffix for its title saying what to install.
 */
export function needing(tools: readonly Tool[], serial = false): { test: typeof test.skip; why: string } {
  const missing = tools.filter(([command]) => !which(command)).map(([, pkg]) => pkg);
  const run = serial ? test.serial : test;
  if (missing.length === 0 || process.env.CI === 'true') return { test: run, why: '' };
  return { test: test.skip, why: ` (skipped: needs ${missing.join(', ')}: sudo npm run setup:test, or apt-get install ${missing.join(' ')})` };
}
