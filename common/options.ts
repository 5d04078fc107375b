// Option parsing for every command: one spec table per command holds names, types, ranges and
// defaults; values come from argv, then the command's environment variables (HONGBAO_<COMMAND>_<FLAG>),
// then a JSON config file (--config FILE), then the defaults. Validation happens once, here, and the
// error names the flag, the value and what is allowed, in one line.
//
// Environment variables are per command, so that one variable means one thing in one unit to every
// command that reads it: HONGBAO_DEMO_CONNECT_TIMEOUT (seconds, the whole connect phase) and
// HONGBAO_AGENT_CONNECT_TIMEOUT (milliseconds, one handshake) cannot be confused. The one exception
// is HONGBAO_TOKEN, the bearer token, which means the same to every command that takes --token.
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';

export type OptionType = 'int' | 'number' | 'string' | 'bool' | 'enum' | 'url';

export interface OptionSpec {
  /** Flag name without dashes, kebab-case: `max-qps`. */
  flag: string;
  type: OptionType;
  help: string;
  default?: unknown;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** Allowed URL protocols for type url, e.g. ['ws:', 'wss:']. */
  protocols?: readonly string[];
  /** May be given several times; the value is an array. */
  repeat?: boolean;
  required?: boolean;
  /** Extra check after typing; returns an error fragment ("must be ...") or undefined. */
  check?: (value: never) => string | undefined;
  /** Placeholder shown in --help. */
  arg?: string;
  /** The variable every command reads for this flag in the same meaning (HONGBAO_TOKEN), instead of its own. */
  sharedEnv?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: readonly OptionSpec[];
}

/** camelCase key of a flag: `max-qps` -> `maxQps`. */
export function keyOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The commands, whose names prefix their environment variables. */
export const COMMAND_NAMES = ['stub', 'agent', 'controller', 'chart', 'demo'] as const;

const upper = (s: string) => s.replace(/-/g, '_').toUpperCase();

/** Environment variable of a command's flag: stub `max-qps` -> `HONGBAO_STUB_MAX_QPS`; token -> `HONGBAO_TOKEN`. */
export function envOf(command: string, spec: Pick<OptionSpec, 'flag' | 'sharedEnv'>): string {
  return spec.sharedEnv ?? `HONGBAO_${upper(command)}_${upper(spec.flag)}`;
}

/** Environment variable of a command's --config file: `HONGBAO_STUB_CONFIG`. */
export function configEnvOf(command: string): string {
  return `HONGBAO_${upper(command)}_CONFIG`;
}

/**
 * A variable of the old, shared namespace (HONGBAO_<FLAG>, read by every command in its own meaning)
 * that is set for one of this command's flags: refused with the name to use, never silently ignored.
 * Names that are some command's current variable (HONGBAO_STUB_WORKERS) are not old names.
 */
function refuseOldNames(cmd: CommandSpec, env: NodeJS.ProcessEnv): void {
  const current = COMMAND_NAMES.map((c) => `HONGBAO_${upper(c)}_`);
  const old = [...cmd.options.filter((s) => !s.sharedEnv).map((s) => [`HONGBAO_${upper(s.flag)}`, envOf(cmd.name, s)]), ['HONGBAO_CONFIG', configEnvOf(cmd.name)]];
  for (const [name, now] of old) {
    if (env[name] === undefined || env[name] === '' || current.some((p) => name.startsWith(p))) continue;
    throw new ConfigError(`hongbao ${cmd.name}: ${name} is not read any more (each command has its own variables): use ${now}`);
  }
}

function describe(spec: OptionSpec): string {
  switch (spec.type) {
    case 'int':
    case 'number': {
      const kind = spec.type === 'int' ? 'an integer' : 'a number';
      if (spec.min !== undefined && spec.max !== undefined) return `${kind} from ${spec.min} to ${spec.max}`;
      if (spec.min !== undefined) return `${kind} >= ${spec.min}`;
      if (spec.max !== undefined) return `${kind} <= ${spec.max}`;
      return kind;
    }
    case 'bool':
      return 'true or false';
    case 'enum':
      return `one of ${(spec.choices ?? []).join(', ')}`;
    case 'url':
      return `a URL (${(spec.protocols ?? ['http:']).map((p) => p + '//').join(' or ')}HOST:PORT)`;
    default:
      return 'a non-empty string';
  }
}

function invalid(command: string, spec: OptionSpec, raw: unknown, source: string, why?: string): ConfigError {
  const shown = typeof raw === 'string' ? JSON.stringify(raw) : JSON.stringify(raw) ?? String(raw);
  const from = source === 'argv' ? '' : ` (from ${source})`;
  return new ConfigError(`hongbao ${command}: --${spec.flag}${from} must be ${why ?? describe(spec)}, got ${shown}`);
}

function convert(command: string, spec: OptionSpec, raw: unknown, source: string): unknown {
  let value: unknown = raw;
  switch (spec.type) {
    case 'int':
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) throw invalid(command, spec, raw, source);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw invalid(command, spec, raw, source);
      }
      value = n;
      break;
    }
    case 'bool':
      if (raw === true || raw === 'true' || raw === '1' || raw === 'yes') value = true;
      else if (raw === false || raw === 'false' || raw === '0' || raw === 'no') value = false;
      else throw invalid(command, spec, raw, source);
      break;
    case 'enum':
      if (typeof raw !== 'string' || !(spec.choices ?? []).includes(raw)) throw invalid(command, spec, raw, source);
      break;
    case 'url': {
      if (typeof raw !== 'string') throw invalid(command, spec, raw, source);
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw invalid(command, spec, raw, source);
      }
      if (!(spec.protocols ?? ['http:']).includes(url.protocol) || !url.hostname) throw invalid(command, spec, raw, source);
      break;
    }
    default:
      if (typeof raw !== 'string' || raw === '') throw invalid(command, spec, raw, source);
  }
  if (spec.check) {
    const why = spec.check(value as never);
    if (why) throw invalid(command, spec, raw, source, why);
  }
  return value;
}

interface RawArgs {
  values: Map<string, unknown[]>;
  positionals: string[];
  help: boolean;
  config?: string;
}

function scan(command: string, specs: readonly OptionSpec[], argv: readonly string[]): RawArgs {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const out: RawArgs = { values: new Map(), positionals: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (flag === 'config') {
      value ??= argv[++i];
      if (value === undefined) throw new ConfigError(`hongbao ${command}: --config needs a JSON file path`);
      out.config = value;
      continue;
    }
    const spec = byFlag.get(flag);
    if (!spec) throw new ConfigError(`hongbao ${command}: unknown option --${flag} (see hongbao ${command} --help)`);
    if (value === undefined) {
      if (spec.type === 'bool' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) value = 'true';
      else value = argv[++i];
    }
    if (value === undefined) throw new ConfigError(`hongbao ${command}: --${flag} needs a value: ${describe(spec)}`);
    const list = out.values.get(flag) ?? [];
    if (list.length > 0 && !spec.repeat) throw new ConfigError(`hongbao ${command}: --${flag} is given more than once`);
    list.push(value);
    out.values.set(flag, list);
  }
  return out;
}

function readConfig(command: string, path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`hongbao ${command}: --config ${path} cannot be read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`hongbao ${command}: --config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`hongbao ${command}: --config ${path} must hold a JSON object of options`);
  }
  return json as Record<string, unknown>;
}

export interface Parsed<T> {
  options: T;
  positionals: string[];
  help: boolean;
}

/**
 * Parses and validates a command's options. Throws ConfigError naming the flag on any bad value.
 * Precedence: argv, then environment (HONGBAO_<COMMAND>_<FLAG>, HONGBAO_TOKEN), then --config file (keys: flag or camelCase), then defaults.
 */
export function parseOptions<T>(cmd: CommandSpec, argv: readonly string[], env: NodeJS.ProcessEnv = {}): Parsed<T> {
  const raw = scan(cmd.name, cmd.options, argv);
  refuseOldNames(cmd, env);
  const configPath = raw.config ?? env[configEnvOf(cmd.name)];
  const config = configPath ? readConfig(cmd.name, configPath) : {};
  const known = new Set(cmd.options.flatMap((s) => [s.flag, keyOf(s.flag)]));
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw new ConfigError(`hongbao ${cmd.name}: unknown option "${key}" in --config ${configPath}`);
  }
  const options: Record<string, unknown> = {};
  for (const spec of cmd.options) {
    const key = keyOf(spec.flag);
    let values: unknown[] | undefined;
    let source = 'argv';
    const name = envOf(cmd.name, spec);
    if (raw.values.has(spec.flag)) values = raw.values.get(spec.flag);
    else if (env[name] !== undefined && env[name] !== '') {
      source = name;
      const v = env[name] as string;
      values = spec.repeat ? v.split(',').map((s) => s.trim()) : [v];
    } else if (config[spec.flag] !== undefined || config[key] !== undefined) {
      source = `--config ${configPath}`;
      const v = config[spec.flag] ?? config[key];
      values = Array.isArray(v) ? v : [v];
    }
    if (values === undefined) {
      if (spec.required && !raw.help) throw new ConfigError(`hongbao ${cmd.name}: --${spec.flag} is required: ${describe(spec)}`);
      options[key] = spec.repeat ? (spec.default ?? []) : spec.default;
      continue;
    }
    if (!spec.repeat && values.length > 1) throw invalid(cmd.name, spec, values, source, 'a single value');
    const converted = values.map((v) => convert(cmd.name, spec, v, source));
    options[key] = spec.repeat ? converted : converted[0];
  }
  return { options: options as T, positionals: raw.positionals, help: raw.help };
}

/** The --help text of a command, generated from its spec. */
export function helpText(cmd: CommandSpec): string {
  const lines = [`usage: ${cmd.usage}`, '', cmd.summary, '', 'options:'];
  const width = Math.max(...cmd.options.map((s) => s.flag.length + (s.arg ?? s.type).length)) + 4;
  for (const s of cmd.options) {
    const left = `--${s.flag} ${s.arg ?? s.type.toUpperCase()}`;
    const def = s.default !== undefined && !(Array.isArray(s.default) && s.default.length === 0) ? ` (default ${JSON.stringify(s.default)})` : '';
    lines.push(`  ${left.padEnd(width + 3)} ${s.help}${def}; env ${envOf(cmd.name, s)}`);
  }
  lines.push(`  ${'--config FILE'.padEnd(width + 3)} JSON object of options (flag or camelCase keys); env ${configEnvOf(cmd.name)}`);
  lines.push(`  ${'--help'.padEnd(width + 3)} this text`);
  return lines.join('\n') + '\n';
}
