/**
 * `mlpipe run <image|tag>`: starts a run, the image pinned by digest where the registry can tell it. The
 * request is checked with Prepare's own schema before anything is contacted (cli/validate.ts), so a bad
 * image reference, model name, data URI or hyperparameters exits 2 and starts nothing.
 */
import { randomBytes } from 'node:crypto';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ECRClient, DescribeImagesCommand } from '@aws-sdk/client-ecr';
import type { RunRequest } from '../../functions/shared/types';
import { UsageError, CliError } from '../io';
import type { Command, Values } from '../command';
import { callerIdentity } from '../identity';
import { executionNameProblem } from '../../functions/shared/execution-name';
import { checkRunRequest, shown } from '../validate';

/** The local runner's training image repository (local/pipeline.ts TRAINING_IMAGE without its tag). */
const LOCAL_TRAINING_REPOSITORY = 'mlpipe/fashion-mnist-train';

/** A bare tag (no registry, repository or digest): a tag of --repository, or of the local training image. */
const isBareTag = (ref: string) => !/[/:@]/.test(ref);
/** The OCI distribution spec's tag. */
const TAG = /^[\w][\w.-]{0,127}$/;

function parseHyperparameters(text: string | undefined): RunRequest['hyperparameters'] | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--hyperparameters must be a JSON object: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UsageError('--hyperparameters must be a JSON object, e.g. \'{"epochs": 3}\'.');
  return value as RunRequest['hyperparameters'];
}

/** The execution input for `image`, from the options; checked with Prepare's schema (UsageError naming the option). */
function runRequest(image: string, values: Values, by?: string): RunRequest {
  const hyperparameters = parseHyperparameters(typeof values.hyperparameters === 'string' ? values.hyperparameters : undefined);
  return checkRunRequest({
    image,
    ...(typeof values.model === 'string' ? { modelName: values.model } : {}),
    ...(typeof values['data-uri'] === 'string' ? { dataUri: values['data-uri'] } : {}),
    ...(typeof values['eval-data-uri'] === 'string' ? { evalDataUri: values['eval-data-uri'] } : {}),
    ...(hyperparameters ? { hyperparameters } : {}),
    ...(by !== undefined ? { trigger: { source: 'cli', detail: { by } } } : {}),
  });
}

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
    'The request is checked as the pipeline checks it before anything starts: a bad value exits 2 naming it.',
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
  validate(args, values) {
    const ref = args[0]!;
    if (isBareTag(ref) && !TAG.test(ref)) throw new UsageError(`<tag> "${shown(ref)}": a tag must be 1 to 128 of letters, digits, "_", "." and "-", not starting with "." or "-".`);
    // A bare tag is checked as the reference it will become (its repository is only known once pinned on AWS).
    const repository = typeof values.repository === 'string' ? values.repository : LOCAL_TRAINING_REPOSITORY;
    runRequest(isBareTag(ref) ? `${repository}:${ref}` : ref, values);
    const problem = typeof values.name === 'string' ? executionNameProblem(values.name) : undefined;
    if (problem) throw new UsageError(`--name "${shown(String(values.name))}": a run name ${problem}.`);
  },
  async run({ target, args, values, io }) {
    const ref = args[0]!;
    let image = ref;
    if (isBareTag(ref)) {
      if (target.mode === 'local') image = `${LOCAL_TRAINING_REPOSITORY}:${ref}`;
      else if (typeof values.repository === 'string') image = await pinTag(values.repository, ref, target.region);
      else throw new UsageError(`"${ref}" looks like a tag; give the full image or --repository <ecr repository uri>.`);
    } else if (target.mode === 'aws' && !ref.includes('@') && /\.dkr\.ecr\./.test(ref)) {
      const [uri, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
      image = await pinTag(uri, tag, target.region);
    }
    const request = runRequest(image, values, await callerIdentity(target));
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
