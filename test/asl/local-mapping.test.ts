/**
 * DESIGN decision 12: the local run executes every Task state with the very handler module the CDK app
 * deploys as that state's Lambda. local/task-handlers.ts keeps its own map (importing aws-cdk-lib would
 * slow `npm start`), so this test holds the two maps to each other.
 */
import { FUNCTION_SPECS } from '../../lib/constructs/pipeline-functions';
import { placeholdersIn } from '../../lib/constructs/state-machine';
import { ASL_PATH, FUNCTION_MODULES, loadLocalDefinition } from '../../local/task-handlers';
import { readFileSync } from 'node:fs';

describe('local handler map', () => {
  it('maps every ASL placeholder to the module the CDK app deploys for it', () => {
    const deployed = Object.fromEntries(
      FUNCTION_SPECS.filter((s) => s.placeholder !== undefined).map((s) => [s.placeholder, s.entry.replace(/^functions\//, '').replace(/\.ts$/, '')]),
    );
    expect(FUNCTION_MODULES).toEqual(deployed);
    expect(Object.keys(FUNCTION_MODULES).sort()).toEqual(placeholdersIn(readFileSync(ASL_PATH, 'utf8')).sort());
  });

  it('gives every Task state of the definition a handler module', () => {
    const { definition, stateModules } = loadLocalDefinition();
    const tasks = Object.entries(definition.States as Record<string, { Type: string }>).filter(([, s]) => s.Type === 'Task').map(([name]) => name);
    expect(Object.keys(stateModules).sort()).toEqual(tasks.sort());
    expect(stateModules).toMatchObject({ Prepare: 'prepare-run', RequestApproval: 'request-approval', RecordFailure: 'record-release', NotifyFailure: 'notify' });
  });
});
