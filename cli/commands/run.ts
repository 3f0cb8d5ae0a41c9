/** `mlpipe run <image|tag>`: starts a run, the image pinned by digest where the registry can tell it. */
import { randomBytes } from 'node:crypto';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ECRClient, DescribeImagesCommand } from '@aws-sdk/client-ecr';
import type { RunRequest } from '../../functions/shared/types';
import { UsageError, CliError } from '../io';
import type { Command } from '../command';
import { callerIdentity } from '../identity';

/** The local runner's training image repository (local/pipeline.ts TRAINING_IMAGE without its tag). */
const LOCAL_TRAINING_REPOSITORY = 'mlpipe/fashion-mnist-train';

function runName(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `cli-${t}-${randomBytes(3).toString('hex')}`;
}

/** A tag of an ECR repository → `<repo uri>@sha256:...`, so the run trains exactly what the tag meant now. */
async function pinTag(repositoryUri: string, tag: string, region: string): Promise<string> {
  const repositoryName = repositoryUri.split('/').slice(1).join('/');
  const ecr = new ECRClient({ region });
  const { imageDetails } = await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: tag }] }));
  const digest = imageDetails?.[0]?.imageDigest;
  if (!digest) throw new CliError(`${repositoryUri} has no image tagged ${tag}.`);
  return `${repositoryUri}@${digest}`;
}

export const runCommand: Command = {
  name: 'run',
  usage: 'mlpipe run <image|tag> [--model <name>] [--data-uri s3://...] [--eval-data-uri s3://...] [--hyperparameters JSON] [--name <run>]',
  summary: 'Start a pipeline run for a training image',
  help: [
    '<image> is a full reference (registry/repo@sha256:... or registry/repo:tag); a bare <tag> means a tag of',
    '--repository (AWS; pinned to its digest through ECR) or of the local training image (local mode).',
    '  --model <name>            model name (default: the pipeline\'s MODEL_NAME)',
    '  --data-uri <s3 uri>       training data (default: the pipeline\'s DATA_URI)',
    '  --eval-data-uri <s3 uri>  held-out evaluation data',
    '  --hyperparameters <json>  e.g. \'{"epochs": 3}\'',
    '  --repository <uri>        ECR repository URI a bare tag belongs to (AWS)',
    '  --name <run>              execution name (default cli-<time>-<random>)',
  ],
  options: {
    model: { type: 'string' },
    'data-uri': { type: 'string' },
    'eval-data-uri': { type: 'string' },
    hyperparameters: { type: 'string' },
    repository: { type: 'string' },
    name: { type: 'string' },
  },
  positionals: [1, 1],
  async run({ target, args, values, io }) {
    const ref = args[0]!;
    let image = ref;
    if (!/[/:@]/.test(ref)) {
      if (target.mode === 'local') image = `${LOCAL_TRAINING_REPOSITORY}:${ref}`;
      else if (typeof values.repository === 'string') image = await pinTag(values.repository, ref, target.region);
      else throw new UsageError(`"${ref}" looks like a tag; give the full image or --repository <ecr repository uri>.`);
    } else if (target.mode === 'aws' && !ref.includes('@') && /\.dkr\.ecr\./.test(ref)) {
      const [uri, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
      image = await pinTag(uri, tag, target.region);
    }
    let hyperparameters: RunRequest['hyperparameters'];
    if (typeof values.hyperparameters === 'string') {
      try {
        hyperparameters = JSON.parse(values.hyperparameters) as RunRequest['hyperparameters'];
      } catch (err) {
        throw new UsageError(`--hyperparameters must be a JSON object: ${(err as Error).message}`);
      }
      if (!hyperparameters || typeof hyperparameters !== 'object' || Array.isArray(hyperparameters)) {
        throw new UsageError('--hyperparameters must be a JSON object, e.g. \'{"epochs": 3}\'.');
      }
    }
    const who = await callerIdentity(target);
    const request: RunRequest = {
      image,
      ...(typeof values.model === 'string' ? { modelName: values.model } : {}),
      ...(typeof values['data-uri'] === 'string' ? { dataUri: values['data-uri'] } : {}),
      ...(typeof values['eval-data-uri'] === 'string' ? { evalDataUri: values['eval-data-uri'] } : {}),
      ...(hyperparameters ? { hyperparameters } : {}),
      trigger: { source: 'cli', detail: { by: who } },
    };
    const name = typeof values.name === 'string' ? values.name : runName();
    const { executionArn } = await target.sfn.send(
      new StartExecutionCommand({ stateMachineArn: target.stateMachineArn, name, input: JSON.stringify(request) }),
    );
    io.out(`started   ${name}`);
    io.out(`image     ${image}`);
    io.out(`arn       ${executionArn}`);
    const link = executionArn && target.consoleLink(executionArn);
    if (link) io.out(`console   ${link}`);
    io.out(`follow    mlpipe status ${name}`);
  },
};
