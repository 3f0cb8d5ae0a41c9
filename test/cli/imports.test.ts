/**
 * The CLI's module graph: no command module (cli/commands/*) reaches cli/main.ts, directly or through
 * other modules, and cli/ has no import cycle. main.ts imports every command; a command importing main.ts
 * (once done for the `Command` type) makes a cycle whose load order decides which exports are undefined.
 * Imports are read with TypeScript's own pre-processor, so `import type`, re-exports and `require` count.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '../..');

/** The repo-local module a relative specifier names, or undefined for packages and node: built-ins. */
function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  const candidates = [base, `${base}.ts`, join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c));
}

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => resolveLocal(file, f.fileName)).filter((f): f is string => f !== undefined);
}

/** The import chain from `start` to `target`, or undefined when `target` is not reachable. */
function pathTo(start: string, target: string): string[] | undefined {
  const seen = new Set<string>([start]);
  const queue: string[][] = [[start]];
  for (let chain = queue.shift(); chain; chain = queue.shift()) {
    const at = chain[chain.length - 1]!;
    if (at === target) return chain;
    for (const next of importsOf(at)) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push([...chain, next]);
    }
  }
  return undefined;
}

/** Every import cycle among the modules under `dir` (each reported once, from its first module found). */
function cyclesUnder(dir: string): string[][] {
  const inDir = (f: string) => f.startsWith(dir + '/');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort().map((f) => join(dir, f));
  const cycles: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, stack: string[]) => {
    const at = stack.indexOf(file);
    if (at >= 0) return void cycles.push([...stack.slice(at), file]);
    if (done.has(file)) return;
    for (const next of importsOf(file).filter(inDir)) visit(next, [...stack, file]);
    done.add(file);
  };
  for (const f of files) visit(f, []);
  return cycles;
}

const rel = (chain: string[], root = ROOT) => chain.map((f) => relative(root, f)).join(' → ');

describe('CLI module graph', () => {
  const main = join(ROOT, 'cli/main.ts');
  const commands = readdirSync(join(ROOT, 'cli/commands')).filter((f) => f.endsWith('.ts'));

  it('finds the command modules', () => {
    expect(commands.length).toBeGreaterThanOrEqual(7);
  });

  it.each(commands)('cli/commands/%s does not reach cli/main.ts', (file) => {
    const chain = pathTo(join(ROOT, 'cli/commands', file), main);
    expect(chain && rel(chain)).toBeUndefined();
  });

  it('cli/ has no import cycle', () => {
    expect(cyclesUnder(join(ROOT, 'cli')).map((c) => rel(c))).toEqual([]);
  });

  describe('the check itself', () => {
    let dir: string;
    beforeAll(() => {
      // GIVEN a CLI laid out as before the fix: a command takes its type from main.ts
      dir = mkdtempSync(join(tmpdir(), 'mlpipe-imports-'));
      mkdirSync(join(dir, 'commands'));
      writeFileSync(join(dir, 'main.ts'), "import { listCommand } from './commands/list';\nexport interface Command { name: string }\n");
      writeFileSync(join(dir, 'commands/list.ts'), "import type { Command } from '../main';\nexport const listCommand: Command = { name: 'list' };\n");
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('sees an `import type` from main.ts as a path and a cycle', () => {
      expect(rel(pathTo(join(dir, 'commands/list.ts'), join(dir, 'main.ts'))!, dir)).toBe('commands/list.ts → main.ts');
      expect(cyclesUnder(dir).map((c) => rel(c, dir))).toEqual(['commands/list.ts → main.ts → commands/list.ts']);
    });
  });
});
