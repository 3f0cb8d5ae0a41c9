/**
 * `mlpipe`: start, watch, approve and roll back pipeline runs, on AWS (a deployed stack) or on the local
 * pipeline (`npm start`). One file per command in cli/commands/; `mlpipe <command> --help` for each.
 * Exit codes: 0 done, 1 failed, 2 wrong usage.
 */
import { parseArgs } from 'node:util';
import { noTarget, wallClock, type Clock, type Command, type Options, type Values } from './command';
import { CliError, UsageError, processIo, type Io } from './io';
import { resolveTarget } from './target';
import { runCommand } from './commands/run';
import { statusCommand } from './commands/status';
import { listCommand } from './commands/list';
import { logsCommand } from './commands/logs';
import { approveCommand } from './commands/approve';
import { rollbackCommand } from './commands/rollback';
import { retryCommand } from './commands/retry';
import { graphCommand } from './commands/graph';
import { productionCommand } from './commands/production';
import { consoleCommand } from './commands/console';
import { endpointCommand } from './commands/endpoint';
import { monitorRbacCommand } from './commands/monitor-rbac';
import { version } from './version';

const COMMON: Options = {
  local: { type: 'boolean' },
  stack: { type: 'string' },
  region: { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = [
  'Target (default: the local pipeline if .mlpipe/local.json names a running one, else AWS):',
  '  --local             use the local pipeline started by `npm start`',
  '  --stack <name>      CloudFormation stack to read outputs from (default MlPipeStack)',
  '  --region <region>   AWS region of the stack',
  '  --state-dir <dir>   where the local pipeline keeps local.json (default .mlpipe)',
];

const reject: Command = { ...approveCommand, name: 'reject', usage: 'mlpipe reject <run> [--comment <text>]', summary: 'Reject a model waiting for approval' };

export const COMMANDS: Command[] = [runCommand, statusCommand, listCommand, logsCommand, approveCommand, reject, retryCommand, rollbackCommand, productionCommand, endpointCommand, monitorRbacCommand, graphCommand, consoleCommand];

function usage(): string[] {
  return [
    'mlpipe: ECR image → training on Kubernetes → evaluation → human approval → production',
    '',
    'Usage: mlpipe <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run `mlpipe <command> --help` for a command\'s options; `mlpipe --version` for the version.',
  ];
}

function commandHelp(c: Command): string[] {
  return [`Usage: ${c.usage}`, '', c.summary + '.', ...(c.help.length ? ['', ...c.help] : []), '', ...COMMON_HELP];
}

/** Levenshtein distance, to suggest the command a typo meant. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** Node's parseArgs messages, shortened to what the user did wrong. */
function parseArgsMessage(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const option = /'(-[^']*)'/.exec(err.message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}.`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    const flag = option.split(' ')[0];
    if (/argument missing|ambiguous/.test(err.message)) return `${flag} needs a value.`;
    if (/does not take an argument/.test(err.message)) return `${flag} takes no value.`;
  }
  return err.message;
}

function countMessage(c: Command, got: string[]): string {
  const [min, max] = c.positionals;
  const wanted = c.usage.split(' ').slice(2).filter((w) => /^[<[][a-z|]+[>\]]$/.test(w)).join(' ');
  if (got.length < min) return `missing ${wanted.split(' ')[got.length] ?? 'argument'}.`;
  return max === 0
    ? `takes no arguments, got "${got.join(' ')}".`
    : `takes at most ${max} argument${max === 1 ? '' : 's'} (${wanted}), got ${got.length}: "${got.join(' ')}".`;
}

export async function main(argv: string[], io: Io = processIo, clock: Clock = wallClock): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    for (const l of usage()) io.out(l);
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.out(`mlpipe ${version()}`);
    return 0;
  }
  if (!name) {
    // Wrong usage: the help goes to stderr, so `mlpipe > file` does not swallow it.
    for (const l of usage()) io.err(l);
    return 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const close = COMMANDS.find((c) => editDistance(c.name, name) <= 2);
    io.err(`mlpipe: there is no command "${name}".${close ? ` Did you mean \`mlpipe ${close.name}\`?` : ''}`);
    io.err('');
    for (const l of usage()) io.err(l);
    return 2;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...COMMON, ...command.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(parseArgsMessage(err as Error));
    }
    const values = parsed.values as Values;
    if (values.help) {
      for (const l of commandHelp(command)) io.out(l);
      return 0;
    }
    const [min, max] = command.positionals;
    if (parsed.positionals.length < min || parsed.positionals.length > max) throw new UsageError(countMessage(command, parsed.positionals));
    command.validate?.(parsed.positionals, values);
    const target =
      command.needsTarget?.(parsed.positionals, values) === false
        ? noTarget(command.name)
        : await resolveTarget({
            ...(values.local ? { local: true } : {}),
            ...(typeof values.stack === 'string' ? { stack: values.stack } : {}),
            ...(typeof values.region === 'string' ? { region: values.region } : {}),
            ...(typeof values['state-dir'] === 'string' ? { stateDir: values['state-dir'] } : {}),
          });
    const code = await command.run({ target, args: parsed.positionals, values, io, clock });
    return code ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`mlpipe ${command.name}: ${err.message}`);
      io.err(`Usage: ${command.usage}   (mlpipe ${command.name} --help)`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(`mlpipe ${command.name}: ${err.message}`);
      return err.exitCode;
    }
    const e = err as Error;
    io.err(`mlpipe ${command.name}: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
