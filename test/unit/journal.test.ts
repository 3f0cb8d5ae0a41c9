/**
 * The local engine's run history file (local/stepfunctions/journal.ts): a line cut by a crash does not
 * take the next run with it, the file keeps the newest runs only, and a failed write never stops a run.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionJournal, KEPT_EXECUTIONS } from '../../local/stepfunctions/journal';

const ARN = (n: number) => `arn:aws:states:us-east-1:000000000000:execution:m:run-${n}`;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mlpipe-journal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(j: ExecutionJournal, n: number, end = true): void {
  j.started({ arn: ARN(n), name: `run-${n}`, input: '{}', startDate: new Date(Date.UTC(2026, 0, 1, 0, 0, n)) });
  if (end) j.ended({ arn: ARN(n), status: 'SUCCEEDED', stopDate: new Date(Date.UTC(2026, 0, 1, 0, 1, n)), output: '{}' });
}

it('a line cut by a crash is dropped at load, and the next run written after it reads back whole', () => {
  const file = join(dir, 'executions.jsonl');
  const j = new ExecutionJournal(file);
  run(j, 1);
  appendFileSync(file, '{"t":"start","arn":"cut'); // a crash in the middle of a line
  const loaded = new ExecutionJournal(file).load();
  expect(loaded.map((r) => r.name)).toEqual(['run-1']);
  run(new ExecutionJournal(file), 2);
  const again = new ExecutionJournal(file).load();
  expect(again.map((r) => [r.name, r.status])).toEqual([['run-1', 'SUCCEEDED'], ['run-2', 'SUCCEEDED']]);
});

it(`keeps the newest ${KEPT_EXECUTIONS} runs, and a run cut off by its process ending reads ABORTED`, () => {
  const file = join(dir, 'executions.jsonl');
  const j = new ExecutionJournal(file);
  for (let n = 1; n <= KEPT_EXECUTIONS + 5; n++) run(j, n, n !== KEPT_EXECUTIONS + 5);
  const loaded = new ExecutionJournal(file).load();
  expect(loaded).toHaveLength(KEPT_EXECUTIONS);
  expect(loaded[0]!.name).toBe('run-6');
  expect(loaded.at(-1)).toMatchObject({ name: `run-${KEPT_EXECUTIONS + 5}`, status: 'ABORTED', error: 'Interrupted' });
  // What load wrote back reads the same.
  expect(new ExecutionJournal(file).load().map((r) => [r.name, r.status])).toEqual(loaded.map((r) => [r.name, r.status]));
  expect(readFileSync(file, 'utf8')).not.toContain('run-5"');
});

it('a write that fails is said once and the run goes on without history on disk', () => {
  const file = join(dir, 'executions.jsonl');
  const warnings: string[] = [];
  const j = new ExecutionJournal(file, (m) => warnings.push(m));
  rmSync(dir, { recursive: true, force: true });
  // The directory is gone: every append fails.
  expect(() => run(j, 1)).not.toThrow();
  expect(() => run(j, 2)).not.toThrow();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/run history is no longer kept in .*executions\.jsonl: ENOENT/);
});
