/** `mlpipe production [model]`: what serves production, since when, how it got there, and what rollback can go back to. */
import { DNS1123_LABEL } from '../../functions/shared/names';
import type { Command } from '../command';
import { UsageError } from '../io';
import { OUTPUT_HELP, OUTPUT_OPTION, outputFormat, printJson } from '../output';
import { readProductionView, type ProductionView } from '../production-view';

export function productionLines(v: ProductionView): string[] {
  const out = [`model     ${v.model}`];
  const s = v.serving;
  if (!s) return [...out, 'serving   nothing: no version of this model was ever released'];
  out.push(`serving   ${s.version} since ${s.since} (${s.how === 'rollback' ? 'rolled back' : 'released'}${s.by ? ` by ${s.by}` : ''})`);
  out.push(`endpoint  ${s.endpoint ?? '(none recorded)'}`);
  if (s.previousVersion) out.push(`previous  ${s.previousVersion}`);
  out.push('history   (newest first)');
  const width = Math.max(...v.history.map((h) => h.action.length));
  for (const h of v.history) {
    const detail = [h.run ? `run ${h.run}` : '', h.by ? `by ${h.by}` : '', h.canary ? `the canary of ${h.canary.version} failed: ${h.canary.reasons.join('; ') || 'see its manifest'}` : '']
      .filter(Boolean)
      .join(', ');
    out.push(`  ${h.at}  ${h.action.padEnd(width)}  ${h.version}${detail ? `  ${detail}` : ''}`);
  }
  if (v.retained === null) out.push('retained  (not read: the production Deployments are in the cluster; `mlpipe rollback --to <version>` checks them)');
  else if (v.retained.length === 0) out.push('retained  none: no earlier version is kept for rollback');
  else {
    v.retained.forEach((r, i) =>
      out.push(`${i === 0 ? 'retained ' : '         '} ${r.version} (${r.replicas} replicas${r.retiredAt ? `, retired ${r.retiredAt}` : ''}): mlpipe rollback ${v.model} --to ${r.version}`),
    );
  }
  return out;
}

export const productionCommand: Command = {
  name: 'production',
  usage: 'mlpipe production [model] [-o json|text]',
  summary: 'Show what serves production: version, since when, the release and rollback history, retained versions',
  help: [
    '[model] is the model name (default: the local pipeline\'s model). Read from the registry (models/<model>/production.json);',
    'locally, the versions kept for `mlpipe rollback` are read from the production Deployments too.',
    OUTPUT_HELP,
  ],
  options: { ...OUTPUT_OPTION },
  positionals: [0, 1],
  validate(args, values) {
    if (args[0] !== undefined && !DNS1123_LABEL.test(args[0])) throw new UsageError(`"${args[0].slice(0, 80)}" is not a model name: use lower-case letters, digits and "-", e.g. fashion-mnist.`);
    outputFormat(values);
  },
  async run({ target, args, values, io }) {
    const model = args[0] ?? target.modelName;
    if (!model) throw new UsageError('which model? Name it: mlpipe production <model>.');
    const view = await readProductionView(target, model);
    if (outputFormat(values) === 'json') printJson(io, view);
    else for (const line of productionLines(view)) io.out(line);
  },
};
