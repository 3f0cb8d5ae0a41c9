import { dataExecutionName, executionName, pushExecutionName, scheduleExecutionName } from '../../functions/shared/execution-name';
import { digestOf } from './fixtures';

const VALID = /^[A-Za-z0-9_-]{1,80}$/;

describe('execution names', () => {
  it('are valid, deterministic and differ per digest', () => {
    const a = pushExecutionName('fashion-mnist-trainer', digestOf('a'));
    expect(a).toMatch(VALID);
    expect(pushExecutionName('fashion-mnist-trainer', digestOf('a'))).toBe(a);
    expect(pushExecutionName('fashion-mnist-trainer', digestOf('b'))).not.toBe(a);
    expect(a).toBe(`fashion-mnist-trainer-${digestOf('a').slice(7, 39)}`);
  });

  it('keep repositories apart when making their names safe or cutting them', () => {
    const d = digestOf('same');
    const names = ['team/model', 'team-model', 'team.model', 'x'.repeat(200), `${'x'.repeat(199)}y`].map((r) => pushExecutionName(r, d));
    for (const n of names) expect(n).toMatch(VALID);
    expect(new Set(names).size).toBe(names.length);
  });

  it('make one name per data object version and per scheduled time', () => {
    const o = { bucket: 'b', key: 'datasets/x/file', etag: '"1"' };
    expect(dataExecutionName('repo', o)).toMatch(VALID);
    expect(dataExecutionName('repo', o)).not.toBe(dataExecutionName('repo', { ...o, etag: '"2"' }));
    expect(scheduleExecutionName('repo', '2026-03-01T06:00:00.000Z')).toBe('repo-sched-20260301T060000Z');
    expect(executionName('a'.repeat(100), 'suffix')).toHaveLength(80);
  });
});
