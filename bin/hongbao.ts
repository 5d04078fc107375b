// The single `hongbao` command. The only file that reads process.argv/env and calls process.exit.
import { ConfigError } from '../common/errors.ts';
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

type Command = (argv: readonly string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>;

// Each command is loaded when it runs: a stub or agent worker (of which a full-scale run starts
// ~130) then never initialises Fastify, the controller or the demo (~10 MB less per process).
const commands: Record<string, () => Promise<Command>> = {
  stub: () => import('../stub/main.ts').then((m) => m.runStub),
  agent: () => import('../agent/main.ts').then((m) => m.runAgent),
  controller: () => import('../controller/main.ts').then((m) => m.runController),
  chart: () => import('../controller/main.ts').then((m) => m.runChart),
  demo: () => import('../demo/main.ts').then((m) => m.runDemo),
};

const usage = `usage: hongbao <command> [options]

commands:
  stub         the red-envelope server (SETs, envelope queues, generator, sending service, counters)
  agent        the load agent: one WebSocket per user, NTP-synchronised shakes, control endpoint
  controller   retargets the fleet's QPS, records the run, renders charts, serves the dashboard
  chart        re-renders a run's report.html, PNG charts and summary.json; --compare B: two runs in one report
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
  return (await run())(rest, process.env, io);
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
