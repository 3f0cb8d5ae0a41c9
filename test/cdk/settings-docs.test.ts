/**
 * The docs against the settings' definitions: docs/architecture.md's settings table is generated from
 * them (lib/settings-docs.ts), and docs/deploy.md's context-key table must name every `mlpipe:*` key the
 * app reads, including every prop that feeds a setting.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ALL_SETTINGS } from '../../functions/shared/settings';
import { CONTEXT_KEYS } from '../../lib/context';
import { ARCHITECTURE_DOC, withGeneratedTable } from '../../lib/settings-docs';

describe('settings docs', () => {
  it('docs/architecture.md holds the settings table generated from the definitions', () => {
    const doc = readFileSync(ARCHITECTURE_DOC, 'utf8');
    // On a difference: `npx tsx lib/settings-docs.ts --write`, and review the diff.
    expect(doc).toBe(withGeneratedTable(doc));
  });

  it('docs/deploy.md documents every context key, and every setting fed by a prop', () => {
    const deploy = readFileSync(path.join(__dirname, '..', '..', 'docs', 'deploy.md'), 'utf8');
    const rows = deploy.split('\n').filter((l) => l.startsWith('| `mlpipe:'));
    const documented = (key: string) => rows.some((r) => r.includes(`\`${key}\``));
    const fromSettings = ALL_SETTINGS.flatMap((d) => (d.source.kind === 'prop' ? [`mlpipe:${d.source.prop}`] : []));
    expect([...new Set([...CONTEXT_KEYS, ...fromSettings])].filter((k) => !documented(k))).toEqual([]);
  });
});
