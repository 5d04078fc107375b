// The single `hongbao` command. The only file that reads process.argv/env and calls process.exit.
import { ConfigError } from '../common/errors.ts';
import { runAgent } from '../client/main.ts';
import { runStub } from '../server-stub/main.ts';
import { runChart, runController } from '../controller/main.ts';
import { runDemo } from '../demo/main.ts';
import type { Io } from '../common/io.ts';

// ntp-client, bundled here, still calls new Buffer(); its DEP0005 warning would tell users nothing.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === 'object' && rest[0] ? (rest[0] as { code?: string }).code : rest[1];
  if (code === 'DEP0005') return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

const io: Io = {
  stdout: (line: string) => process.stdout.write(line.endsWith('\n') ? line : line + '\n'),
  stderr: (line: string) => process.stderr.write(line.endsWith('\n') ? line : line + '\n'),
  self: [process.execPath, process.argv[1]],
};

const commands: Record<string, (argv: readonly string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>> = {
  stub: runStub,
  agent: runAgent,
  controller: runController,
  chart: runChart,
  demo: runDemo,
};

const usage = `usage: hongbao <command> [options]

commands:
  stub         the red-envelope server (SETs, envelope queues, generator, sending service, counters)
  agent        the load agent: one WebSocket per user, NTP-synchronised shakes, control endpoint
  controller   retargets the fleet's QPS, records the run, renders charts, serves the dashboard
  chart        re-renders a run's PNG charts and summary.json from its series.ndjson
  demo         the whole experiment on this machine: stub, controller, a local fleet; charts in results/

hongbao <command> --help shows a command's options.
`;

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage);
    return name ? 0 : 2;
  }
  const run = commands[name];
  if (!run) {
    io.stderr(`hongbao: unknown command "${name}"; commands: ${Object.keys(commands).join(', ')}`);
    return 2;
  }
  return run(rest, process.env, io);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      io.stderr(err.message);
      process.exit(err.exitCode);
    }
    io.stderr(`hongbao: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
